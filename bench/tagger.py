"""The tagger's cost per image, before and after it classifies what the picture shows (`make bench`).

Side by side in one run, on the same decoded images, interleaved: "before" is the measures alone
(palette, tone, colour, geometry, sharpness, background, alpha), "after" the measures plus the
ImageNet classifier (EfficientNet-Lite0 through ONNX Runtime, one thread, as the tagger runs it).
Writes bench/results/tagger-<cpu|gpu>-<cores>core.{md,json}.
"""

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from atelier_devtools.local.samples import write_samples
from atelier_shared.images import ImageLimits, decode
from atelier_tagger.classifier import Classifier
from atelier_tagger.tags import WORKING_SIDE, compute_tags
from atelier_workshop.lite0 import export_classifier
from bench.common import SHARED_CONTENT, machine, result_stem

ROUNDS = 7


def _images(folder: Path) -> dict[str, Image.Image]:
    paths = write_samples(folder / "samples") + (sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else [])
    limits = ImageLimits(max_bytes=2**62, max_pixels=50_000_000, max_side=16_384)
    return {path.name: decode(path.read_bytes(), limits, WORKING_SIDE) for path in paths}  # As the tagger decodes.


def measure(classifier: Classifier, images: dict[str, Image.Image]) -> dict[str, Any]:
    """Median milliseconds per image of each variant, and each image's category."""
    before: list[float] = []
    after: list[float] = []
    for _ in range(ROUNDS):
        for image in images.values():
            started = time.perf_counter()
            compute_tags(image)
            before.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            compute_tags(image)
            classifier.see(image)
            after.append((time.perf_counter() - started) * 1000)
    seen = {name: classifier.see(image) for name, image in images.items()}
    return {
        "images": len(images),
        "rounds": ROUNDS,
        "before_p50_ms": round(statistics.median(before), 1),
        "after_p50_ms": round(statistics.median(after), 1),
        "ratio": round(statistics.median(after) / statistics.median(before), 2),
        "categories": {
            name: [s.category, round(s.category_confidence, 2), s.subjects[0].label] for name, s in seen.items()
        },
    }


def main() -> None:
    info = machine()
    with tempfile.TemporaryDirectory() as work:
        export_classifier(Path(work) / "classifier")
        classifier = Classifier(Path(work) / "classifier", threshold=0.35)
        asyncio.run(classifier.start())
        result = measure(classifier, _images(Path(work)))
    print(json.dumps(result, indent=2))
    stem = result_stem("tagger", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, **result}, indent=2) + "\n")
    rows = "\n".join(
        f"| {name} | {category or '(none)'} | {confidence} | {label} |"
        for name, (category, confidence, label) in result["categories"].items()
    )
    stem.with_suffix(".md").write_text(
        f"# Tagger benchmark ({info['date']})\n\n"
        f"Machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}. Produced by `make bench`\n"
        f"(bench/tagger.py): {result['images']} images (the generated samples and ../shared/data/content) at the\n"
        f"tagger's working size, {ROUNDS} rounds, before and after interleaved in one run.\n\n"
        "| tagger per image | p50 (ms) |\n| --- | --- |\n"
        f"| before: measures only | {result['before_p50_ms']} |\n"
        f"| after: measures + classifier (ONNX Runtime, 1 thread) | {result['after_p50_ms']} |\n"
        f"| ratio | {result['ratio']}x |\n\n"
        "| image | category | confidence | top class |\n| --- | --- | --- | --- |\n"
        f"{rows}\n"
    )


if __name__ == "__main__":
    main()
