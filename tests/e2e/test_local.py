"""`make run`'s main job, as a user runs it: `atelier local --demo` starts the embedded stack, pushes
the samples through by all three entry paths and exits 0 once every one is exported."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_atelier_local_exports_every_sample_and_leaves_nothing_running(tmp_path: Path) -> None:
    atelier = Path(sys.executable).with_name("atelier")
    command = [str(atelier), "local", "--demo", "--brands", str(REPO / "deploy" / "brands"), "--out", "out",
               "--api-port", "0", "--s3-port", "0", "--timeout", "120"]  # fmt: skip
    # A session of its own, so that whatever it leaves behind can be killed as a group.
    local = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        try:
            stdout, stderr = local.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            local.terminate()  # On SIGTERM it stops what it started.
            stdout, stderr = local.communicate(timeout=30)
            raise AssertionError(f"atelier local --demo did not end: {stdout[-3000:]}") from None
        logs = sorted((tmp_path / ".atelier" / "logs").glob("*.log"))
        assert local.returncode == 0, (stdout[-3000:], stderr[-3000:], logs)
        assert "6 of 6 exported" in stdout

        samples = sorted(path.stem for path in (tmp_path / ".atelier" / "samples").iterdir())
        out = tmp_path / "out"
        saved = {folder.name: sorted(path.name for path in folder.iterdir()) for folder in out.iterdir()}
        assert sorted(saved) == samples
        assert saved["landscape"] == ["preview.webp"]  # The preview tier's one rendition.
        for name, renditions in saved.items():
            for rendition in renditions:
                with Image.open(out / name / rendition) as image:
                    assert image.width > 0 and image.height > 0, (name, rendition)
        assert running_in(tmp_path) == [], "a process the stack started is still running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(local.pid, signal.SIGKILL)


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
