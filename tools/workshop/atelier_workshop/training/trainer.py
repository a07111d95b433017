"""Training a feed-forward style network, or distilling a fast one from a quality one.

Progress (losses, images per second, ETA) goes to a callback; checkpoints are written every few
hundred steps and a run resumes from its checkpoint. The result is a registry artifact whose
manifest records the style image's hash, the settings, the loss network and the measured quality.
"""

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from atelier_shared import sha256_hex
from atelier_stylizer.artifacts import load_network, read_manifest
from atelier_stylizer.networks import ARCHITECTURES, TransformerNet, parameter_count
from atelier_stylizer.registry import ModelManifest
from atelier_workshop.artifacts import write_artifact
from atelier_workshop.training.loss_networks import LossNetwork, loss_network
from atelier_workshop.training.losses import PerceptualLoss

CHECKPOINT = "checkpoint.pt"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a training run (recorded in the manifest)."""

    style: str
    style_image: Path
    content_dir: Path
    out_dir: Path
    tier: Literal["quality", "fast"] = "quality"
    version: int = 1
    steps: int = 2000
    batch_size: int = 4
    image_size: int = 192
    style_size: int = 256
    learning_rate: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 1e-3
    # Penalty on outputs outside 0..1 (serving clamps them: flat, saturated blotches otherwise).
    range_weight: float = 10.0
    # The perceptual loss network: EfficientNet-Lite0 (from its package) or VGG-16 (weights you supply).
    loss_network: Literal["lite0", "vgg16"] = "lite0"
    # Style statistics: "gram" (Gatys et al.) or "covariance" (centred Gram plus channel means).
    style_statistics: Literal["gram", "covariance"] = "gram"
    # The loss network's weights file (required for vgg16; lite0 defaults to the installed package's).
    loss_weights: Path | None = None
    seed: int = 0
    checkpoint_every: int = 200
    working_side: int = 0
    # A quality artifact folder: distil this tier from it instead of training from the style alone.
    teacher: Path | None = None
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def served_side(self) -> int:
        """The longest side the pool runs this model at."""
        return self.working_side or (1024 if self.tier == "quality" else 512)

    def recorded(self) -> dict[str, object]:
        """Settings as manifest JSON (paths by name only)."""
        values = asdict(self)
        for name in ("style_image", "content_dir", "out_dir", "loss_weights", "teacher"):
            values[name] = Path(values[name]).name if values[name] else None
        values.pop("provenance")
        return values


@dataclass(frozen=True)
class Progress:
    """One progress report."""

    step: int
    steps: int
    losses: dict[str, float]
    images_per_s: float
    eta_s: float


class ContentImages:
    """Random crops of a folder's images, held in memory, at a fixed size."""

    def __init__(self, folder: Path, size: int, rng: np.random.Generator) -> None:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"no content images (jpg, png, webp) in {folder}")
        self._size = size
        self._rng = rng
        self._images = [self._fit(Image.open(path).convert("RGB")) for path in paths]

    def _fit(self, image: Image.Image) -> Image.Image:
        scale = (self._size * 1.3) / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        return image

    def batch(self, count: int) -> torch.Tensor:
        """NCHW float batch in 0..1 of random crops (random scale and flips)."""
        crops = []
        for _ in range(count):
            image = self._images[self._rng.integers(len(self._images))]
            side = int(min(image.size) * self._rng.uniform(0.6, 1.0))
            side = max(side, min(self._size, min(image.size)))
            x = int(self._rng.integers(0, image.width - side + 1))
            y = int(self._rng.integers(0, image.height - side + 1))
            crop = image.crop((x, y, x + side, y + side)).resize((self._size, self._size), Image.Resampling.BILINEAR)
            if self._rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crops.append(np.asarray(crop, dtype=np.float32) / 255.0)
        return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy())


def load_style(path: Path, size: int) -> torch.Tensor:
    """The style image as a 1x3xHxW tensor, its shorter side `size`."""
    image = Image.open(path).convert("RGB")
    scale = size / min(image.size)
    image = image.resize(
        (max(4, round(image.width * scale)), max(4, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    return torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1).copy() / 255.0)[None]


def _seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def train(settings: TrainSettings, on_progress: Callable[[Progress], None] = lambda progress: None) -> ModelManifest:
    """Train (or distil) one model, resuming from the out folder's checkpoint when there is one."""
    rng = _seed_everything(settings.seed)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    content = ContentImages(settings.content_dir, settings.image_size, rng)
    network = TransformerNet(ARCHITECTURES[settings.tier])
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    judge = loss_network(settings.loss_network, settings.loss_weights)
    style = load_style(settings.style_image, settings.style_size)
    perceptual = PerceptualLoss(
        judge,
        style,
        settings.content_weight,
        settings.style_weight,
        settings.tv_weight,
        statistics=settings.style_statistics,
        range_weight=settings.range_weight,
    )
    teacher = load_network(settings.teacher) if settings.teacher else None

    start, history = _resume(settings, network, optimizer, rng)
    network.train()
    started = time.monotonic()
    for step in range(start + 1, settings.steps + 1):
        batch = content.batch(settings.batch_size)
        output = network(batch)
        losses = perceptual(output, batch) if teacher is None else _distillation_loss(output, batch, teacher, judge)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        history.append({name: float(value.detach()) for name, value in losses.items()})
        if step % 10 == 0 or step == settings.steps:
            elapsed = time.monotonic() - started
            rate = (step - start) * settings.batch_size / max(elapsed, 1e-9)
            recent = history[-10:]
            mean = {name: sum(h[name] for h in recent) / len(recent) for name in recent[0]}
            on_progress(
                Progress(
                    step, settings.steps, mean, rate, (settings.steps - step) * settings.batch_size / max(rate, 1e-9)
                )
            )
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            _checkpoint(settings, network, optimizer, step, rng, history)

    network.eval()
    return _write(settings, network, history, time.monotonic() - started, judge)


def _distillation_loss(
    output: torch.Tensor, batch: torch.Tensor, teacher: TransformerNet, judge: LossNetwork
) -> dict[str, torch.Tensor]:
    """Match the teacher's output pixel-wise (L1) and in the loss network's features."""
    with torch.no_grad():
        target = teacher(batch).clamp(0, 1)
        target_features = judge(target)
    pixel = functional.l1_loss(output, target)
    features = sum(
        (
            functional.mse_loss(a, b) / (b.pow(2).mean() + 1e-12)
            for a, b in zip(judge(output), target_features, strict=True)
        ),
        torch.zeros(()),
    )
    return {"total": pixel + 0.1 * features, "pixel": pixel, "features": features}


def _resume(
    settings: TrainSettings, network: TransformerNet, optimizer: torch.optim.Optimizer, rng: np.random.Generator
) -> tuple[int, list[dict[str, float]]]:
    path = settings.out_dir / CHECKPOINT
    if not path.is_file():
        return 0, []
    saved = torch.load(path, map_location="cpu", weights_only=False)  # Our own checkpoint (RNG state inside).
    current = json.loads(json.dumps(settings.recorded(), default=str))
    # A run may be extended with more steps; anything else must match.
    if {**saved["settings"], "steps": None} != {**current, "steps": None}:
        raise ValueError(f"{path} was written by a run with other settings; remove it or use another --out")
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"])
    return int(saved["step"]), list(saved["history"])


def _checkpoint(
    settings: TrainSettings,
    network: TransformerNet,
    optimizer: torch.optim.Optimizer,
    step: int,
    rng: np.random.Generator,
    history: list[dict[str, float]],
) -> None:
    path = settings.out_dir / CHECKPOINT
    partial = path.with_suffix(".partial")
    torch.save(
        {
            "settings": json.loads(json.dumps(settings.recorded(), default=str)),
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": history,
        },
        partial,
    )
    partial.replace(path)


def _write(
    settings: TrainSettings,
    network: TransformerNet,
    history: list[dict[str, float]],
    seconds: float,
    judge: LossNetwork,
) -> ModelManifest:
    tail = history[-50:]
    final = {name: round(sum(h[name] for h in tail) / len(tail), 6) for name in tail[0]} if tail else {}
    teacher_ref = read_manifest(settings.teacher).ref if settings.teacher else None
    working_side = settings.served_side
    training = {
        **settings.recorded(),
        "seconds_this_run": round(seconds, 1),
        "distilled_from": teacher_ref,
        "loss_network_sha256": judge.weights_sha256,
    }
    return write_artifact(
        network,
        settings.out_dir,
        style=settings.style,
        tier=settings.tier,
        version=settings.version,
        working_side=working_side,
        style_image_sha256=sha256_hex(settings.style_image.read_bytes()),
        loss_network=judge.kind,
        training=training,
        provenance=settings.provenance,
        metrics={"final_losses": final, "parameters": parameter_count(network)},
    )
