"""The shipped default models: where they live, how they were made, and publishing them.

Each default style has a `quality` model trained from a procedural style image this project makes
(training/procedural.py) on procedural content scenes, and a `fast` model distilled from it.
`make models` (atelier models make-defaults) reruns this recipe. Weights ship as FP16 safetensors
(loaded as FP32) without the ONNX graph, which the ONNX Runtime engine exports on first use.
"""

from dataclasses import dataclass
from pathlib import Path

from atelier_stylizer.registry import MANIFEST, ModelManifest, ModelRegistry

DEFAULT_MODELS = Path(__file__).parent / "default_models"


@dataclass(frozen=True)
class Recipe:
    """How one default style is trained."""

    style: str
    quality_steps: int
    fast_steps: int
    style_weight: float
    image_size: int = 192
    style_size: int = 384


RECIPES = (
    Recipe("tiles", quality_steps=1000, fast_steps=600, style_weight=8.0),
    Recipe("brush", quality_steps=1000, fast_steps=600, style_weight=2.5),
)


def shipped_artifacts(root: Path = DEFAULT_MODELS) -> list[Path]:
    """Folders of the shipped artifacts (<name>/<version>/)."""
    return sorted(path.parent for path in root.glob(f"*/*/{MANIFEST}"))


async def publish_defaults(registry: ModelRegistry, root: Path = DEFAULT_MODELS) -> list[ModelManifest]:
    """Publish every shipped artifact into a registry (already published versions are rewritten)."""
    return [await registry.publish(folder) for folder in shipped_artifacts(root)]
