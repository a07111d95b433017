"""Fixtures shared by every tier: the embedded infrastructure and per-test isolation.

One Kafka-protocol cluster, S3 endpoint and trace sink serve the whole session; every test gets
its own topic prefix (so its own topics and consumer groups) and its own buckets.
"""

import io
import os
import signal
import struct
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from atelier_devtools.local.stack import LocalInfra
from atelier_shared import AtelierSettings
from atelier_shared.settings import settings_from

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
        return settings_from(cls, self.environment, **overrides)


@contextmanager
def s3_frozen(infra: LocalInfra) -> Iterator[None]:
    """The S3 endpoint stopped (SIGSTOP): it accepts connections and never answers, until it is
    continued (always, at the end)."""
    os.kill(infra.s3.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(infra.s3.pid, signal.SIGCONT)


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


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG whose header claims `width` x `height` (its data is a few compressed rows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def bad_inputs() -> dict[str, bytes]:
    """The bad uploads every entry path must refuse: name to bytes."""
    good = jpeg_bytes(seed=7)
    return {
        "truncated.jpg": good[: len(good) // 2],
        "empty.jpg": b"",
        "notes.jpg": b"these are meeting notes, not a picture\n" * 20,
        "bomb.png": bomb_png(),
    }


def adobe_rgb_profile() -> bytes:
    """A minimal ICC v2 display profile with Adobe RGB (1998) primaries (D50-adapted) and gamma 2.2."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 563) + b"\0\0"  # gamma 563/256 = 2.199
    text = b"Adobe RGB (1998) test profile\0"
    description = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 12 + b"\0" * 67
    tags = [
        (b"desc", description),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + data


def real_photos() -> list[Path]:
    """The photos beside the checkout (../shared/data/content), else the project's generated samples."""
    shared = REPO.parent / "shared" / "data" / "content"
    if shared.is_dir() and any(shared.iterdir()):
        return sorted(shared.iterdir())
    from atelier_devtools.local.samples import write_samples

    return write_samples(Path(tempfile.mkdtemp(prefix="samples-")))
