"""The image work around the model, per image, as the services do it (`make bench`).

Side by side in one run, interleaved: the stylizer's decode of a JPEG original to its working size
(Pillow: the reduced DCT scale where it can, then Lanczos), square and 4:5 portrait, and its result
written for the exporter and read back there, as PNG (what it stored before) and as uncompressed
TIFF (what it stores now). The originals are the 1080 px JPEGs the preview benchmark uploads.
Writes bench/results/codecs-<cpu|gpu>-<cores>core.{md,json}.
"""

import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atelier_devtools.local.samples import write_samples
from atelier_exporter.settings import ExporterSettings
from atelier_shared.images import decode, encode
from atelier_stylizer.batches import finish
from atelier_stylizer.stylizer import load_original
from bench.common import SHARED_CONTENT, machine, result_stem
from bench.models import timed
from bench.preview import jpegs

ROUNDS = 7
SIDES = (512, 1024)
# The social feed's 4:5, which no working side divides into multiples of 4.
PORTRAIT = (1080, 1350)
# What the exporter reads a stylized result with.
LIMITS = ExporterSettings().limits


def step(steps: dict[str, list[float]], name: str, run: Callable[[], Any]) -> Any:
    """Time `run` into the step's medians; its output, for the next step."""
    milliseconds, output = timed(run, ROUNDS)
    steps.setdefault(name, []).append(milliseconds)
    return output


def measure(originals: list[bytes], portraits: list[bytes]) -> list[dict[str, Any]]:
    """Median milliseconds per image of each step, over the originals, and the stored bytes."""
    rows = []
    for side in SIDES:
        steps: dict[str, list[float]] = {}
        sizes: dict[str, list[int]] = {"png": [], "tiff": []}
        for portrait in portraits:
            step(steps, "decode portrait (Pillow)", lambda: load_original(portrait, LIMITS, side, None))  # noqa: B023
        for original in originals:
            prepared, _ = step(steps, "decode original (Pillow)", lambda: load_original(original, LIMITS, side, None))  # noqa: B023
            result = finish(prepared.rgb, prepared, 1.0)
            for kind, content_type in (("png", "image/png"), ("tiff", "image/tiff")):
                stored = step(steps, f"write result ({kind})", lambda: encode(result, content_type))  # noqa: B023
                sizes[kind].append(len(stored))
                step(steps, f"read result ({kind})", lambda: decode(stored, LIMITS))  # noqa: B023
        row: dict[str, Any] = {"side": side, "images": len(originals)}
        row.update({name: round(statistics.median(values), 2) for name, values in steps.items()})
        row.update({f"{kind} bytes": int(statistics.median(values)) for kind, values in sizes.items()})
        row["png / tiff, write + read"] = round(
            (row["write result (png)"] + row["read result (png)"])
            / (row["write result (tiff)"] + row["read result (tiff)"]),
            1,
        )
        rows.append(row)
    return rows


def main() -> None:
    info = machine()
    with tempfile.TemporaryDirectory() as work:
        sources = write_samples(Path(work) / "samples") + (
            sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else []
        )
        rows = measure(jpegs(sources, len(sources)), jpegs(sources, len(sources), PORTRAIT))
    print(json.dumps(rows, indent=2))
    stem = result_stem("codecs", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    columns = list(rows[0])
    stem.with_suffix(".md").write_text(
        f"# Codec benchmark ({info['date']})\n\n"
        f"Machine: {info['cpu']} ({info['cores']} cores). Produced by `make bench` (bench/codecs.py): per\n"
        f"image, medians of {ROUNDS} runs each (after one warm-up) over {rows[0]['images']} 1080x1080 JPEG originals (portraits:\n"
        f"as many {PORTRAIT[0]}x{PORTRAIT[1]}), in one run, milliseconds unless stated. The stylizer decodes an original to its working side and writes its\n"
        "result; the exporter reads it.\n\n"
        + "| "
        + " | ".join(columns)
        + " |\n|"
        + " --- |" * len(columns)
        + "\n"
        + "\n".join("| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows)
        + "\n"
    )


if __name__ == "__main__":
    main()
