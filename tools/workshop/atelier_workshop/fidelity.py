"""Scoring model artifacts as the pools serve them, on held-out photos, and recording the result.

`atelier models evaluate` and `make models` use this. The held-out photos are those beside the
checkout (../shared/data/content) and the colour photos scikit-image ships in its wheel; the
training content is procedural, so none of them was seen in training. Load an artifact, run it the way its pool
does (the fast pool at half the side, upscaled back), score it with the training loss network
against its style image (atelier_workshop.training.evaluation), write the scores into the
artifact's manifest and a report.
"""

import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.nn import functional

from atelier_stylizer.artifacts import load_network, read_manifest
from atelier_stylizer.batches import working_size
from atelier_stylizer.registry import MANIFEST, ModelManifest
from atelier_workshop.training.evaluation import Fidelity, Judge, Stylize, evaluate
from atelier_workshop.training.loss_networks import LossNetwork, lite0
from atelier_workshop.training.trainer import load_style

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# Photos inside scikit-image's wheel used as held-out photos (NASA's astronaut, public domain; the
# cat, the coffee cup and the rocket, CC0 or public domain per scikit-image's data notes).
PACKAGED_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
# Photos are scored with their longest side this long (a multiple of 8: the fast pool halves it).
EVALUATION_SIDE = 512


def load_photo(path: Path, side: int = EVALUATION_SIDE) -> torch.Tensor:
    """A photo as 1x3xHxW in 0..1, upright, longest side `side`, both sides multiples of 8."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    scale = side / max(image.size)
    size = (max(8, round(image.width * scale / 8) * 8), max(8, round(image.height * scale / 8) * 8))
    image = image.resize(size, Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1).copy() / 255.0)[None]


def packaged_photos() -> list[Path]:
    """Colour photos scikit-image ships inside its wheel (public domain and CC0), never trained on."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [folder / name for name in PACKAGED_PHOTOS if (folder / name).is_file()]


def held_out_photos(folder: Path | None) -> dict[str, torch.Tensor]:
    """The photos in a folder (if given and there) and the packaged ones, by file name; an error when none."""
    found = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if folder and folder.is_dir() else []
    )
    paths = found + packaged_photos()
    if not paths:
        raise SystemExit(f"no held-out photos in {folder}: give --content DIR with photos the model was not trained on")
    return {path.name: load_photo(path) for path in paths}


def served(folder: Path) -> tuple[ModelManifest, Stylize]:
    """An artifact and its network as its pool runs it: at most its working side, upscaled back.

    Held-out photos are 512 px, within both pools' working sides, so both tiers run them at full size.
    """
    manifest = read_manifest(folder)
    network = load_network(folder, manifest)

    def stylize(photo: torch.Tensor) -> torch.Tensor:
        height, width = photo.shape[2:]
        working_width, working_height = working_size(width, height, manifest.working_side)
        if (working_height, working_width) == (height, width):
            return network(photo)  # type: ignore[no-any-return]
        small = functional.interpolate(photo, size=(working_height, working_width), mode="bilinear", antialias=True)
        return functional.interpolate(network(small), size=(height, width), mode="bilinear")

    return manifest, stylize


def style_size(manifest: ModelManifest, default: int = 256) -> int:
    """The shorter side the style image was trained at (the scale of its texture)."""
    return int(manifest.training.get("style_size") or default)


def score(
    folder: Path, style_image: Path, photos: dict[str, torch.Tensor], network: LossNetwork | None = None
) -> Fidelity:
    """An artifact's fidelity on held-out photos, judged against its style image."""
    manifest, stylize = served(folder)
    judge = Judge(network or lite0(), load_style(style_image, style_size(manifest)))
    return evaluate(stylize, judge, photos)


def record(folder: Path, fidelity: Fidelity) -> ModelManifest:
    """Write the scores into an (unpublished) artifact's manifest."""
    manifest = read_manifest(folder)
    updated = ModelManifest.model_validate(
        {**manifest.model_dump(), "metrics": {**manifest.metrics, "fidelity": fidelity.record()}}
    )
    (folder / MANIFEST).write_text(json.dumps(updated.model_dump(), indent=2))
    return updated


def report(results: Iterable[tuple[str, Fidelity]]) -> str:
    """A Markdown table: per model, its mean scores, each photo's, and whether it passes."""
    lines = [
        "| model | style distance (share of the photo's; lower is better) | content preservation (noise) "
        "| per photo: style / content | gate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, fidelity in results:
        photos = "; ".join(f"{s.photo} {s.style:.2f} / {s.content:.2f}" for s in fidelity.photos)
        verdict = "passes" if fidelity.passed else "fails"
        content = f"{fidelity.content:.2f} ({fidelity.noise_content:.2f})"
        lines.append(f"| {name} | {fidelity.style:.2f} | {content} | {photos} | {verdict} |")
    return "\n".join(lines)
