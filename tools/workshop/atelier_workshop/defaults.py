"""The shipped default models: their recipes, making them (`make models`), and publishing them.

Each style has a `quality` model trained against the ImageNet-trained EfficientNet-Lite0 loss
network on procedural content scenes, and a `fast` model distilled from it. Style images are drawn
by the project (training/procedural.py) or read from the styles folder beside the checkout
(`../shared/data/styles`: udnie.jpg, Francis Picabia, 1913, public domain; the image itself is not
committed). Every model is scored on held-out photos (atelier_workshop.fidelity) and shipped only
if it passes the gate. Weights ship as FP16 safetensors (loaded as FP32).
"""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from atelier_stylizer.registry import MANIFEST, ModelManifest, ModelRegistry
from atelier_workshop.artifacts import repackage
from atelier_workshop.console import console, train_with_progress
from atelier_workshop.fidelity import held_out_photos, record, report, score
from atelier_workshop.training.evaluation import Fidelity
from atelier_workshop.training.procedural import STYLES, write_content
from atelier_workshop.training.trainer import TrainSettings

DEFAULT_MODELS = Path(__file__).parent / "default_models"
VERSION = 2
CONTENT_SCENES, CONTENT_SIZE, CONTENT_SEED = 400, 320, 0


@dataclass(frozen=True)
class Recipe:
    """How one default style is trained."""

    style: str
    # "procedural" (drawn by training/procedural.py), or a file name in the styles folder.
    image: str
    quality_steps: int
    fast_steps: int
    style_weight: float
    tv_weight: float = 1e-3
    image_size: int = 192
    style_size: int = 256


# Style weights chosen by looking at the held-out photos: tiles and brush at 1 keep faces and objects
# readable under the texture (at 10 the tiles buried them); Picabia's large planes need 2.5 to show.
RECIPES = (
    Recipe("tiles", "procedural", quality_steps=1000, fast_steps=600, style_weight=1.0),
    Recipe("brush", "procedural", quality_steps=1000, fast_steps=600, style_weight=1.0),
    Recipe("udnie", "udnie.jpg", quality_steps=1000, fast_steps=600, style_weight=2.5),
)


def shipped_artifacts(root: Path = DEFAULT_MODELS) -> list[Path]:
    """Folders of the shipped artifacts (<name>/<version>/)."""
    return sorted(path.parent for path in root.glob(f"*/*/{MANIFEST}"))


async def publish_defaults(registry: ModelRegistry, root: Path = DEFAULT_MODELS) -> list[ModelManifest]:
    """Publish every shipped artifact into a registry (already published versions are rewritten)."""
    return [await registry.publish(folder) for folder in shipped_artifacts(root)]


def style_image(recipe: Recipe, work: Path, styles: Path) -> Path:
    """The recipe's style image as a file: drawn, or found in the styles folder."""
    if recipe.image != "procedural":
        path = styles / recipe.image
        if not path.is_file():
            raise SystemExit(f"style image {path} not found: give --styles with the folder that holds {recipe.image}")
        return path
    path = work / "styles" / f"{recipe.style}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    STYLES[recipe.style]().save(path)
    return path


def _settings(
    recipe: Recipe, image: Path, content: Path, out: Path, tier: str, steps: int, **more: object
) -> TrainSettings:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    source = f"procedural: STYLES[{recipe.style!r}]()" if recipe.image == "procedural" else f"styles/{recipe.image}"
    provenance = {
        "style_image": source,
        "content": f"procedural: write_content(count={CONTENT_SCENES}, size={CONTENT_SIZE}, seed={CONTENT_SEED})",
        "recipe": f"atelier_workshop.defaults.RECIPES ({recipe})",
        "made_with": "atelier models make-defaults",
        "source_commit": commit or "unknown",
    }
    return TrainSettings(
        style=recipe.style,
        style_image=image,
        content_dir=content,
        out_dir=out,
        tier=tier,  # type: ignore[arg-type]
        version=VERSION,
        steps=steps,
        image_size=recipe.image_size,
        style_size=recipe.style_size,
        style_weight=recipe.style_weight,
        tv_weight=recipe.tv_weight,
        provenance=provenance,
        **more,  # type: ignore[arg-type]
    )


def _gated(folder: Path, image: Path, photos: dict[str, torch.Tensor]) -> Fidelity:
    """Score a packaged artifact, record the scores; stop if it fails the gate."""
    fidelity = score(folder, image, photos)
    record(folder, fidelity)
    console.print(report([(folder.parent.name, fidelity)]))
    if not fidelity.passed:
        raise SystemExit(f"{folder.parent.name} fails the fidelity gate: not shipped (see the scores above)")
    return fidelity


def make_defaults(work: Path, steps_scale: float, styles: Path, photos_folder: Path) -> list[tuple[str, Fidelity]]:
    """Train, score and package every recipe's quality and fast models into DEFAULT_MODELS."""
    photos = held_out_photos(photos_folder)
    content = work / "content"
    if not content.is_dir():
        console.print(f"writing {CONTENT_SCENES} procedural content scenes")
        write_content(content, CONTENT_SCENES, size=CONTENT_SIZE, seed=CONTENT_SEED)
    results = []
    for recipe in RECIPES:
        image = style_image(recipe, work, styles)
        quality_out, fast_out = work / f"{recipe.style}-quality", work / f"{recipe.style}-fast"
        quality_steps, fast_steps = (
            max(1, int(steps * steps_scale)) for steps in (recipe.quality_steps, recipe.fast_steps)
        )
        train_with_progress(_settings(recipe, image, content, quality_out, "quality", quality_steps))
        train_with_progress(_settings(recipe, image, content, fast_out, "fast", fast_steps, teacher=quality_out))
        for trained in (quality_out, fast_out):
            staged = work / "shipped" / trained.name / str(VERSION)
            shutil.rmtree(staged.parent, ignore_errors=True)
            repackage(trained, staged)
            results.append((trained.name, _gated(staged, image, photos)))
    for name, _ in results:
        shutil.rmtree(DEFAULT_MODELS / name, ignore_errors=True)
        shutil.copytree(work / "shipped" / name, DEFAULT_MODELS / name)
    return results
