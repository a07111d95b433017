"""`make run`'s main job, as a user runs it: `atelier local --demo` starts the embedded stack, pushes
the samples through by all three entry paths and exits 0 once every one is exported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_atelier_local_exports_every_sample_and_leaves_nothing_running(tmp_path: Path) -> None:
    atelier = Path(sys.executable).with_name("atelier")
    done = subprocess.run(
        [str(atelier), "local", "--demo", "--brands", str(REPO / "deploy" / "brands"), "--out", "out",
         "--api-port", "0", "--s3-port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    logs = tmp_path / ".atelier" / "logs"
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:], sorted(logs.glob("*.log")))
    assert "6 of 6 exported" in done.stdout

    samples = sorted(path.stem for path in (tmp_path / ".atelier" / "samples").iterdir())
    saved = {folder.name: sorted(path.name for path in folder.iterdir()) for folder in (tmp_path / "out").iterdir()}
    assert sorted(saved) == samples
    assert saved["landscape"] == ["preview.webp"]  # The preview tier's one rendition.
    for name, renditions in saved.items():
        for rendition in renditions:
            with Image.open(tmp_path / "out" / name / rendition) as image:
                assert image.width > 0 and image.height > 0, (name, rendition)

    assert running_in(tmp_path) == [], "a process the stack started is still running"


def running_in(folder: Path) -> list[int]:
    """Processes whose working directory is `folder` (what the stack starts runs there)."""
    found = []
    for process in Path("/proc").iterdir():
        try:
            if process.name.isdigit() and Path(os.readlink(process / "cwd")) == folder:
                found.append(int(process.name))
        except OSError:  # Gone meanwhile, or not ours to read.
            continue
    return found
