"""The summary `make run` and `atelier submit` print: readable in an 80-column terminal."""

from pathlib import Path

from rich.console import Console

from atelier_client.client import Submission
from atelier_client.report import print_summary

REASON = (
    "rule 'vivid-images': labels contains 'vivid' (is ['vivid', 'portrait']); production tier: quality pool"
    " (quality pool expected wait 1.0 s (lag 1 x 1000 ms / 1 instance(s)), predicted 2.5 s within target 20.0 s)"
)
EXPORTED = {
    "stage": "exported",
    "source": "http",
    "tags": {"labels": ["vivid", "hue-cyan", "portrait"], "brightness": 0.59, "contrast": 0.19, "palette": []},
    "route": {"style": "brush", "strength": 1.0, "model_tier": "quality", "reason": REASON},
    "stylized": {
        "model": "brush-quality@2",
        "backend": "torch-cpu-bf16",
        "batch_size": 1,
        "timings": {"queue_wait_ms": 8, "decode_ms": 39, "inference_ms": 2049, "encode_ms": 22},
    },
    "stage_ms": {"tag": 127, "route": 6, "stylize": 2279, "export": 117, "total": 2529},
}
FAILED = {
    "stage": "failed",
    "failure": {"service": "uploader", "error_type": "InvalidImage", "message": "corrupt or truncated image/png"},
}


def test_one_line_per_asset_then_its_details_at_80_columns(tmp_path: Path) -> None:
    console = Console(width=80, record=True, color_system=None)
    submissions = [
        Submission(Path("portrait.jpg"), "e2dc0a02-2403", status=EXPORTED),
        Submission(Path("broken.png"), "9fec687f-4997", status=FAILED),
        Submission(Path("huge.tif"), error="413: the upload is over 50 MB"),
    ]
    print_summary(console, submissions, {"e2dc0a02-2403": ["out/portrait/web.avif", "out/portrait/print.png"]})
    text = console.export_text()
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 3, text  # A line per asset in the table, however long its reason.
    assert "brush x1.00 → quality" in rows[0] and "brush-quality@2" in rows[0] and "2529" in rows[0]
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
    flat = " ".join(text.split())
    assert "predicted 2.5 s within target 20.0 s" in flat  # The whole reason, wrapped below.
    assert "torch-cpu-bf16, batch of 1" in flat
    assert "tag 127, route 6, stylize 2279, export 117 ms (stylize: queue 8, decode 39, infer 2049, encode 22)" in flat
    assert "out/portrait/web.avif" in flat and "out/portrait/print.png" in flat
    assert "uploader: InvalidImage: corrupt or truncated image/png" in flat
    assert "413: the upload is over 50 MB" in flat and "rejected" in flat
