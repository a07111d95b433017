"""A style model's fidelity on held-out photos: how much of the style it brings, how much of the photo it keeps.

For each photo, judged by the ImageNet-trained EfficientNet-Lite0 (the training loss network):
- style distance: the Gram statistics of the output's features against the style image's, summed
  over layers (each normalised by the style's own magnitude), as a share of the unchanged photo's
  distance: 1.0 is no closer to the style than the photo itself; lower is better;
- content preservation: the mean of the correlation of content-layer features (output against photo)
  and the correlation of their coarse edge maps: 1.0 for the photo itself, near 0 for noise.

The same scores for noise stand beside them. The gate: a model must bring the style clearly closer
than the photo is (style distance at most GATE_STYLE) while keeping the content well above noise (at
least GATE_CONTENT_SHARE of the way from noise to the photo). Shipped models aim at TARGET_STYLE.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional

from atelier_workshop.training.loss_networks import LossNetwork
from atelier_workshop.training.losses import gram

GATE_STYLE = 0.75
GATE_CONTENT_SHARE = 0.25
TARGET_STYLE = 0.40
# A model's output for a batch of photos (NCHW in 0..1), as the pool serves it.
Stylize = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PhotoScore:
    """One photo's scores: the model's output, and noise, against the photo itself."""

    photo: str
    style: float
    content: float
    feature_similarity: float
    edge_correlation: float
    noise_style: float
    noise_content: float


@dataclass(frozen=True)
class Fidelity:
    """A model's scores over the held-out photos, and whether it passes the gate."""

    photos: list[PhotoScore]

    @property
    def style(self) -> float:
        """Mean style distance, as a share of the unchanged photos'."""
        return float(np.mean([score.style for score in self.photos]))

    @property
    def content(self) -> float:
        return float(np.mean([score.content for score in self.photos]))

    @property
    def noise_content(self) -> float:
        return float(np.mean([score.noise_content for score in self.photos]))

    @property
    def content_floor(self) -> float:
        """The least content a passing model keeps: part of the way from noise to the photo."""
        return self.noise_content + GATE_CONTENT_SHARE * (1.0 - self.noise_content)

    @property
    def passed(self) -> bool:
        return self.style <= GATE_STYLE and self.content >= self.content_floor

    def record(self) -> dict[str, object]:
        """For the manifest and the report."""
        return {
            "judge": "efficientnet-lite0-imagenet",
            "style_distance": round(self.style, 4),
            "content_preservation": round(self.content, 4),
            "noise_content_preservation": round(self.noise_content, 4),
            "gate": {"style_at_most": GATE_STYLE, "content_at_least": round(self.content_floor, 4)},
            "passed": self.passed,
            "photos": [
                {name: round(v, 4) if isinstance(v, float) else v for name, v in asdict(s).items()} for s in self.photos
            ],
        }


class Judge:
    """Scores outputs against a style image with a loss network's features."""

    def __init__(self, network: LossNetwork, style: torch.Tensor) -> None:
        self._network = network
        with torch.no_grad():
            self._style = [gram(features) for features in network(style)]

    def style_distance(self, images: torch.Tensor) -> torch.Tensor:
        """Per image: summed, normalised Gram distance to the style."""
        with torch.no_grad():
            features = self._network(images)
        distances = [
            (gram(layer) - style).pow(2).flatten(1).sum(1) / style.pow(2).sum()
            for layer, style in zip(features, self._style, strict=True)
        ]
        return torch.stack(distances).sum(0)

    def content_similarity(self, images: torch.Tensor, photos: torch.Tensor) -> torch.Tensor:
        """Per image: correlation of content-layer features with its photo's (1 for the photo, about 0 for noise)."""
        with torch.no_grad():
            layer = self._network.content_layer
            ours, theirs = self._network(images)[layer], self._network(photos)[layer]
        # Each channel's spatial pattern, not its level: where things are, not how much of a texture there is.
        ours, theirs = (f - f.mean(dim=(2, 3), keepdim=True) for f in (ours, theirs))
        return functional.cosine_similarity(ours.flatten(1), theirs.flatten(1), dim=1)


def edge_correlation(image: torch.Tensor, photo: torch.Tensor, block: int = 4) -> float:
    """Correlation of coarse, blurred luma edge magnitudes (structure, not brush texture)."""

    def edges(x: torch.Tensor) -> torch.Tensor:
        luma = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)[None]
        coarse = functional.avg_pool2d(luma, block)
        gy, gx = coarse[..., 1:, :-1] - coarse[..., :-1, :-1], coarse[..., :-1, 1:] - coarse[..., :-1, :-1]
        return functional.avg_pool2d(torch.hypot(gx, gy), 3, stride=1, padding=1).flatten()

    first, second = edges(image), edges(photo)
    if float(first.std()) == 0.0 or float(second.std()) == 0.0:
        return 0.0
    return float(torch.corrcoef(torch.stack([first, second]))[0, 1])


def evaluate(stylize: Stylize, judge: Judge, photos: dict[str, torch.Tensor], seed: int = 0) -> Fidelity:
    """Score a model on photos (each 1x3xHxW in 0..1), beside the photo itself and seeded noise."""
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for name, photo in photos.items():
        with torch.no_grad():
            output = stylize(photo).clamp(0, 1)
        noise = torch.rand(photo.shape, generator=generator)
        unchanged, styled, noisy = judge.style_distance(torch.cat([photo, output, noise])).tolist()
        similarity, noise_similarity = judge.content_similarity(
            torch.cat([output, noise]), photo.expand(2, -1, -1, -1)
        ).tolist()
        edges = edge_correlation(output[0], photo[0])
        noise_edges = edge_correlation(noise[0], photo[0])
        scores.append(
            PhotoScore(
                photo=name,
                style=styled / unchanged,
                content=(similarity + edges) / 2,
                feature_similarity=similarity,
                edge_correlation=edges,
                noise_style=noisy / unchanged,
                noise_content=(noise_similarity + noise_edges) / 2,
            )
        )
    return Fidelity(scores)
