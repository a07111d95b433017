"""Every input format a creative team sends, and images smaller than the network, export."""

import io

import numpy as np
import pytest
from PIL import Image
from pillow_heif import register_heif_opener

from tests.e2e.conftest import Pipeline

register_heif_opener()  # This test writes HEIC itself, whatever else the run imported.

pytestmark = pytest.mark.e2e


def _file(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def test_gif_tiff_heic_avif_and_tiny_images_export(pipeline: Pipeline) -> None:
    """Regression: GIF, TIFF and HEIC were refused with 415, and a 1x1 PNG was accepted and then
    crashed the stylizer (retried three times as an unknown error, then dead-lettered)."""
    photo = Image.fromarray(np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    inputs = {
        "animated.gif": _file(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "scan.tif": _file(photo, "TIFF"),
        "phone.heic": _file(photo, "HEIF"),
        "photo.avif": _file(photo, "AVIF"),
        "1x1.png": _file(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
        "2x2.png": _file(Image.new("RGBA", (2, 2), (10, 200, 10, 128)), "PNG"),
    }
    accepted = {}
    for name, data in inputs.items():
        code, body = pipeline.submit(data, brand="lumen")
        assert code == 202, (name, body)
        accepted[body["asset_id"]] = name
    done = pipeline.wait_final(accepted)
    for asset_id, status in done.items():
        assert status["stage"] == "exported", (accepted[asset_id], status.get("failure"))
        assert {r["profile"] for r in status["renditions"]} == {"web", "thumbnail", "print"}
