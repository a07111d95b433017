"""The packages as an image installs them: every service's package built as a wheel (not the editable
checkout) and installed into a fresh virtual environment; the model publisher and the stylizer run
from it against the embedded stack.

Regression (issue 11): a wheel of the stylizer carried no default models, `atelier models publish`
published nothing, and a stylizer pool reported ready while every asset was dead-lettered as an
unknown style. The editable installs the other tests use read the checkout, so none of them saw it.
Third-party dependencies come from the project's environment (a path file), so the test builds and
installs only Atelier's own packages and takes seconds, not a PyTorch download.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from atelier_devtools.local.s3 import free_port
from atelier_shared import EventProducer, ObjectStore, Outgoing, events, sha256_hex, topics
from tests.conftest import REPO, Deployment, jpeg_bytes
from tests.kafka import read_topic

pytestmark = pytest.mark.e2e

PACKAGES = [
    REPO / "shared",
    *sorted(path.parent for path in (REPO / "services").glob("*/pyproject.toml")),
    REPO / "tools" / "client",
    REPO / "tools" / "workshop",
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtual environment with Atelier's packages installed from wheels."""
    root = tmp_path_factory.mktemp("packages")
    # Built from clean copies: setuptools reuses a source tree's build/ folder, whose stale files would
    # hide what the package declares.
    sources = [root / "sources" / package.relative_to(REPO) for package in PACKAGES]
    for package, source in zip(PACKAGES, sources, strict=True):
        shutil.copytree(package, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, *map(str, sources)], check=True, timeout=600, capture_output=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps"]
    subprocess.run([*install, *map(str, sorted(wheels.glob("*.whl")))], check=True, timeout=600, capture_output=True)
    return venv / "bin"


def test_the_wheels_carry_what_they_serve(installed: Path) -> None:
    probe = (
        "import atelier_stylizer, atelier_workshop, atelier_tagger;"
        "from atelier_workshop.defaults import shipped_artifacts;"
        "from atelier_uploader.studio import PAGE;"
        "print(atelier_stylizer.__file__, atelier_workshop.__file__, len(shipped_artifacts()),"
        " PAGE, sorted(file.name for file in PAGE.iterdir()))"
    )
    result = subprocess.run([str(installed / "python"), "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    stylizer, workshop, shipped, page, files = result.stdout.split(maxsplit=4)
    venv = str(installed.parent)
    assert all(path.startswith(venv) for path in (stylizer, workshop, page)), (
        "imported from the checkout, not the wheel"
    )
    assert int(shipped) == 6  # Three styles, quality and fast.
    assert files.strip() == "['favicon.svg', 'index.html', 'studio.css', 'studio.js']"  # The studio's page.


def test_the_stylizer_from_its_wheel_publishes_the_shipped_models_and_serves(
    installed: Path, deployment: Deployment
) -> None:
    env = {**os.environ, **deployment.environment, "OTEL_TRACES_EXPORTER": "none"}
    published = subprocess.run(
        [str(installed / "atelier"), "models", "publish"], env=env, capture_output=True, text=True, timeout=300
    )
    assert published.returncode == 0, published.stdout[-2000:] + published.stderr[-2000:]
    assert published.stdout.count("published ") == 6, published.stdout

    port = free_port()
    stylizer_env = {
        **env,
        "ATELIER_STYLIZER_POOL": "fast",
        "ATELIER_STYLIZER_WORKING_SIDE": "64",
        "ATELIER_STYLIZER_THREADS": "1",
        "ATELIER_OPS_PORT": str(port),
    }
    log = (deployment.workdir / "stylizer.log").open("w")
    process = subprocess.Popen(
        [str(installed / "python"), "-m", "atelier_stylizer"], env=stylizer_env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout_s=120)
        served = asyncio.run(serve_one(deployment))
        assert served.model == "tiles-fast@2" and served.stylized.content_type == "image/tiff"
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the stylizer exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the stylizer was not ready within {timeout_s} s")


async def serve_one(deployment: Deployment) -> events.AssetStylized:
    """A preview request for an original in the store, and the stylized event it produced."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    data = jpeg_bytes(160, 120, seed=5)
    key = "acme/packaged/original.jpg"
    await store.put(settings.bucket_originals, key, data, "image/jpeg")
    original = events.ObjectRef(
        bucket=settings.bucket_originals, key=key, sha256=sha256_hex(data), size=len(data),
        width=160, height=120, content_type="image/jpeg",
    )  # fmt: skip
    header = events.AssetHeader(asset_id="packaged", brand="acme", tier=events.TIER_PREVIEW, original=original)
    route = events.RouteDecision(style="tiles", strength=1.0, model_tier=events.MODEL_TIER_FAST)
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    try:
        await producer.send([Outgoing(topics.STYLIZE_PREVIEW, events.StyleRequested(asset=header, route=route))])
    finally:
        await producer.stop()
    stylized = settings.topics.name(topics.STYLIZED)
    records = await read_topic(settings.kafka_bootstrap, stylized, until=lambda found: len(found) >= 1, timeout_s=120)
    return events.AssetStylized.FromString(records[0].value)
