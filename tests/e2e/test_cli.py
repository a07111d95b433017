"""The command line a user runs against a running pipeline: submit a folder, wait, save renditions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atelier_shared.local.samples import write_samples
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


def test_submit_a_folder_and_read_a_status(pipeline: Pipeline, tmp_path: Path) -> None:
    images = tmp_path / "images"
    write_samples(images)
    (images / "notes.jpg").write_text("not an image")
    env = {**os.environ, "ATELIER_API_URL": pipeline.api}
    atelier = str(Path(sys.executable).parent / "atelier")
    result = subprocess.run(
        [atelier, "submit", str(images), "--brand", "lumen", "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 1, result.stdout[-2000:]  # One file was refused.
    assert "unsupported_type" in result.stdout
    saved = sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*.*"))
    assert "product-shot/web.avif" in saved and "cutout/print.png" in saved and len(saved) == 6 * 3

    asset_id = next(line.rsplit(": ", 1)[1] for line in result.stdout.splitlines() if "landscape.jpg: " in line)
    status = subprocess.run([atelier, "status", asset_id], env=env, capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and json.loads(status.stdout)["stage"] == "exported"
