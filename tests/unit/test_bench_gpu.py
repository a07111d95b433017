"""make bench-gpu's short mode: on a machine without CUDA it measures the CPU rows, says the CUDA rows
were skipped, and imports nothing of the project but the networks (the GPU machine has no venv)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = """
import sys
from bench import gpu
gpu.main(["--size", "64", "--quick", "--out", sys.argv[1]])
project = {"atelier_shared", "atelier_workshop", "pydantic", "structlog", "aiokafka", "minio"}
print("LOADED", sorted(name for name in sys.modules if name.split(".")[0] in project))
"""


def test_short_mode_writes_cpu_rows_and_says_cuda_was_skipped(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(REPO / "services" / "stylizer"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout
    report = json.loads((tmp_path / "gpu-cpu-only.json").read_text())
    rows = {(row["tier"], row["precision"]): row for row in report["sections"]["cpu"]}
    # Times, not rates: at 64 px a rate rounds to 0.0 when the machine is busy.
    for row in (("quality", "fp32"), ("fast", "fp32"), ("pillow", "decode")):
        assert rows[row]["ms"] > 0, row
    service = {(row["tier"], row["mode"]): row for row in report["sections"]["service"]}
    assert service[("quality", "uint8 runner, eager")]["ms"] > 0
    assert service[("quality", "float32 arrays, eager")]["ms"] > 0
    decoders = {(row["decoder"], row["source"]) for row in report["sections"]["service decode"]}
    assert decoders == {
        (way, f"{source}x{source}")
        for way in ("pillow, 1 core", f"pillow, {os.cpu_count()} cores")
        for source in (67, 192)
    }
    flights = [(row["decoder"], row["in_flight"]) for row in report["sections"]["service pipeline"]]
    assert flights == [("pillow", 1), ("pillow", 2)]
    # The wiring only: on CPU the runner holds its lock throughout, so two threads cannot race.
    threads = {(row["runner"], row["threads"]): row for row in report["sections"]["service in flight"]}
    for tier in ("quality", "fast"):
        assert threads[(f"{tier} fp32 uint8 runner, eager", 1)]["max_difference_vs_alone"] == "reference"
        row = threads[(f"{tier} fp32 uint8 runner, eager", 2)]
        assert row["ms_per_batch"] > 0 and row["max_difference_vs_alone"] == 0, row
    kernels = {row["kernel"]: row for row in report["sections"]["profile"]}
    assert kernels["all convolution kernels"]["ms_per_batch"] > 0 and "all other kernels" in kernels
    sections = {"service", "service in flight", "service decode", "service pipeline", "profile", "cpu"}
    assert set(report["sections"]) == sections
    markdown = (tmp_path / "gpu-cpu-only.md").read_text()
    assert "CUDA rows skipped" in markdown
    assert "service decode nvjpeg: skipped, the stylizer runs on cpu" in markdown
    assert "A quick run (--quick)" in markdown
    assert "| quality | fp32 | 1 |" in markdown
