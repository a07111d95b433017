"""Did a stylization work? Style statistics move toward the style image; structure stays the input's.

Measured on one (input, output, style) triple:
- colour: distance of per-channel mean and spread to the style image's, before and after;
- texture: distance of Gram matrices in a fixed random-feature network to the style's, before/after;
- structure: correlation of the output's edge magnitudes with the input's.
An identity output moves nothing toward the style; a noise output keeps no structure: both fail.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from atelier_workshop.training.loss_networks import random_features
from atelier_workshop.training.losses import gram

_EVALUATOR = random_features(seed=97)  # Not the training loss network's seed: a held-out judge.


@dataclass(frozen=True)
class StyleCheck:
    """Measures of one stylization and whether it passes."""

    colour_before: float
    colour_after: float
    gram_before: float
    gram_after: float
    edge_correlation: float

    @property
    def colour_moved(self) -> float:
        """Share of the colour-statistics gap to the style closed (negative: moved away)."""
        return 1.0 - self.colour_after / max(self.colour_before, 1e-9)

    @property
    def texture_moved(self) -> float:
        """Share of the Gram-statistics gap to the style closed."""
        return 1.0 - self.gram_after / max(self.gram_before, 1e-12)

    @property
    def passed(self) -> bool:
        return self.colour_moved > 0.05 and self.texture_moved > 0.2 and self.edge_correlation > 0.3

    def as_dict(self) -> dict[str, float]:
        return {
            "colour_moved": round(self.colour_moved, 4),
            "texture_moved": round(self.texture_moved, 4),
            "edge_correlation": round(self.edge_correlation, 4),
        }


def _colour_stats(image: np.ndarray) -> np.ndarray:
    pixels = image.reshape(-1, 3)
    return np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])


def _grams(image: np.ndarray) -> list[torch.Tensor]:
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()
    with torch.no_grad():
        return [gram(features) for features in _EVALUATOR(tensor)]


def _gram_distance(first: list[torch.Tensor], second: list[torch.Tensor]) -> float:
    return float(sum(functional.mse_loss(a, b) / (b.pow(2).mean() + 1e-12) for a, b in zip(first, second, strict=True)))


def _edges(image: np.ndarray, block: int = 4) -> np.ndarray:
    """Edge magnitude of the luma at a quarter of the resolution, slightly blurred.

    Structure, not brush texture; the blur tolerates edges moved by a pixel or two (halos, strokes).
    """
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    height, width = (luma.shape[0] // block) * block, (luma.shape[1] // block) * block
    coarse = luma[:height, :width].reshape(height // block, block, width // block, block).mean(axis=(1, 3))
    gy, gx = np.gradient(coarse)
    return _blur(np.hypot(gx, gy), sigma=1.5)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D array."""
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    rows = np.apply_along_axis(np.convolve, 1, image, kernel, mode="same")
    return np.apply_along_axis(np.convolve, 0, rows, kernel, mode="same")


def check_stylization(content: np.ndarray, output: np.ndarray, style: np.ndarray) -> StyleCheck:
    """Compare HWC float images in 0..1 (content and output the same size)."""
    style_stats = _colour_stats(style)
    style_grams = _grams(style)
    edges_in, edges_out = _edges(content).ravel(), _edges(output).ravel()
    correlation = float(np.corrcoef(edges_in, edges_out)[0, 1]) if edges_in.std() and edges_out.std() else 0.0
    return StyleCheck(
        colour_before=float(np.linalg.norm(_colour_stats(content) - style_stats)),
        colour_after=float(np.linalg.norm(_colour_stats(output) - style_stats)),
        gram_before=_gram_distance(_grams(content), style_grams),
        gram_after=_gram_distance(_grams(output), style_grams),
        edge_correlation=correlation,
    )
