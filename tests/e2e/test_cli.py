"""The command line a user runs against a running pipeline: submit a folder, wait, save renditions.

It runs from a fresh virtual environment where only the client package is installed (built from
tools/client, not the editable checkout): an integrator needs nothing of the pipeline's own code.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atelier_devtools.local.samples import write_samples
from tests.conftest import REPO, jpeg_bytes
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def client_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtual environment holding only atelier-client and what it needs."""
    venv = tmp_path_factory.mktemp("client-only")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*install, "-c", str(REPO / "constraints.txt"), str(REPO / "tools" / "client")],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return venv / "bin"


def test_the_client_package_installs_alone(client_only: Path) -> None:
    probe = "import importlib.util as u; print([m for m in ('atelier_shared', 'aiokafka', 'torch') if u.find_spec(m)])"
    result = subprocess.run([str(client_only / "python"), "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    usage = subprocess.run([str(client_only / "atelier"), "local"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "atelier-devtools" in usage.stderr


def test_submit_a_folder_and_read_a_status(pipeline: Pipeline, client_only: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    write_samples(images)
    (images / "notes.jpg").write_text("not an image")
    env = {**os.environ, "ATELIER_API_URL": pipeline.api, "ATELIER_API_KEY": pipeline.keys["lumen"]}
    atelier = str(client_only / "atelier")
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


def test_a_wrong_key_or_no_api_is_said_plainly(pipeline: Pipeline, client_only: Path, tmp_path: Path) -> None:
    image = tmp_path / "one.jpg"
    image.write_bytes(jpeg_bytes())
    atelier = str(client_only / "atelier")
    for api, key, expected in [
        (pipeline.api, "atelier_0123456789abcdef_wrong", "refused the key"),
        (pipeline.api, "", "refused the key"),
        ("http://127.0.0.1:9", pipeline.keys["acme"], "cannot reach the API"),
    ]:
        env = {**os.environ, "ATELIER_API_URL": api, "ATELIER_API_KEY": key}
        for command in (["submit", str(image), "--brand", "acme", "--no-wait"], ["status", "some-asset"]):
            result = subprocess.run(
                [atelier, *command], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
            )
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            assert expected in result.stderr and "Traceback" not in result.stderr, (command, result.stderr)
