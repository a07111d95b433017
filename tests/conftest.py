"""Fixtures shared by every tier: the embedded infrastructure and per-test isolation.

One Kafka-protocol cluster, S3 endpoint and trace sink serve the whole session; every test gets
its own topic prefix (so its own topics and consumer groups) and its own buckets.
"""

import asyncio
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from atelier_shared import AtelierSettings
from atelier_shared.local.stack import LocalInfra

REPO = Path(__file__).resolve().parents[1]
BRANDS = REPO / "deploy" / "brands"


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfra]:
    """The session's embedded broker, S3 endpoint and trace sink."""
    local = LocalInfra(tmp_path_factory.mktemp("infra"))
    local.start()
    yield local
    local.stop()


@dataclass
class Deployment:
    """One test's isolated slice of the infrastructure."""

    infra: LocalInfra
    topic_prefix: str
    bucket_prefix: str
    workdir: Path

    @property
    def environment(self) -> dict[str, str]:
        return {
            **self.infra.environment(self.topic_prefix, self.bucket_prefix),
            "ATELIER_BRANDS_DIR": str(BRANDS),
            "ATELIER_MODEL_CACHE_DIR": str(self.workdir / "model-cache"),
            "ATELIER_LOG_LEVEL": "info",
        }

    def settings(self, cls: type[AtelierSettings] = AtelierSettings, **overrides: object) -> AtelierSettings:
        """Settings of this deployment (ignoring any local endpoints file)."""
        values = {
            name.removeprefix("ATELIER_").lower(): value
            for name, value in self.environment.items()
            if name.startswith("ATELIER_")
        }
        values.update(overrides)
        return cls(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def deployment(infra: LocalInfra, tmp_path: Path) -> Deployment:
    """Fresh topics, groups and buckets for one test."""
    tag = uuid.uuid4().hex[:8]
    slice_ = Deployment(infra, f"t{tag}.", f"t{tag}-", tmp_path)
    infra.provision(slice_.settings())
    return slice_


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A small real JPEG with some structure."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / width, ys / height, 0.5 + 0.5 * np.sin(xs / 9.0)], axis=-1)
    pixels = (np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run(coro: object) -> object:
    """Run a coroutine from synchronous test code."""
    return asyncio.run(coro)  # type: ignore[arg-type]
