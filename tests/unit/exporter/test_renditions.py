"""Renditions (size, format, colour profile, alpha) and webhook signatures."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from atelier_exporter.renditions import render, rendition_key, target_size
from atelier_exporter.webhook import signature, verify
from atelier_shared import events
from atelier_shared.images import SRGB_ICC


def profile(name: str, fmt: str, max_side: int = 0, quality: int = 80) -> events.ExportProfile:
    return events.ExportProfile(name=name, format=fmt, max_side=max_side, quality=quality)


def test_keys_are_deterministic_per_asset_and_profile() -> None:
    web = profile("web", "webp")
    assert rendition_key("acme", "a1", web) == rendition_key("acme", "a1", web) == "acme/a1/web.webp"
    assert rendition_key("acme", "a1", profile("thumbnail", "jpeg")) == "acme/a1/thumbnail.jpg"


def test_sizes_follow_the_original_capped_by_the_profile() -> None:
    assert target_size((4000, 3000), profile("web", "webp", 2048)) == (2048, 1536)
    assert target_size((800, 600), profile("web", "webp", 2048)) == (800, 600)
    assert target_size((800, 600), profile("print", "png")) == (800, 600)


def test_a_full_size_webp_of_the_largest_original_fits_the_format() -> None:
    """Regression: WebP holds at most 16,383 px a side, and the uploader accepts 16,384: a brand's
    full-size WebP profile failed such an asset for good (a ValueError, retried and dead-lettered)."""
    assert target_size((16_384, 8_192), profile("full", "webp")) == (16_383, 8_192)
    assert target_size((16_384, 8_192), profile("print", "png")) == (16_384, 8_192)
    assert target_size((16_384, 8_192), profile("web", "webp", 2048)) == (2048, 1024)
    data = render(Image.new("RGB", (4096, 2)), profile("full", "webp"), (16_384, 8))
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (16_383, 8)


@pytest.mark.parametrize(("fmt", "pil_format"), [("webp", "WEBP"), ("avif", "AVIF"), ("jpeg", "JPEG"), ("png", "PNG")])
def test_each_format_is_written_with_the_srgb_profile(fmt: str, pil_format: str) -> None:
    stylized = Image.new("RGB", (200, 150), (40, 90, 200))
    data = render(stylized, profile("p", fmt, max_side=100), (1200, 900))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == pil_format and image.size == (100, 75)
        assert image.info.get("icc_profile") == SRGB_ICC


def test_print_rendition_is_full_resolution_of_the_original() -> None:
    data = render(Image.new("RGB", (256, 192)), profile("print", "png"), (1024, 768))
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (1024, 768)


def test_alpha_is_kept_in_png_and_flattened_on_white_for_jpeg() -> None:
    cutout = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    with Image.open(io.BytesIO(render(cutout, profile("p", "png"), (64, 64)))) as image:
        assert image.mode == "RGBA"
    with Image.open(io.BytesIO(render(cutout, profile("t", "jpeg"), (64, 64)))) as image:
        assert image.mode == "RGB" and min(image.getpixel((10, 10))) > 240  # type: ignore[arg-type]


def test_webhook_signature_verifies_and_detects_tampering() -> None:
    body = b'{"type":"asset.exported"}'
    header = signature(b"secret", "1700000000", body)
    assert header.startswith("sha256=") and verify(b"secret", "1700000000", body, header)
    assert not verify(b"secret", "1700000000", body + b" ", header)
    assert not verify(b"other", "1700000000", body, header)
    assert not verify(b"secret", "1700000001", body, header)


def test_stage_durations_from_the_timeline() -> None:
    timeline = events.Timeline()
    timeline.uploaded_at.FromMilliseconds(1_000)
    timeline.tagged_at.FromMilliseconds(1_250)
    timeline.exported_at.FromMilliseconds(4_000)
    durations = events.stage_durations_ms(events.timeline_ms(timeline))
    assert durations == {"tag": 250.0, "total": 3000.0}


def test_renditions_of_one_image_encoded_at_once_keep_their_own_settings() -> None:
    """Regression: a rendition at the stylized image's own size was encoded from that very object, and
    Pillow keeps a save's settings on the image while it runs: a JPEG encoded beside a WebP at the
    same size took the WebP's quality 10 instead of its own 95."""
    noise = Image.effect_noise((640, 480), 60).convert("RGB")
    jpeg, webp = profile("hi", "jpeg", quality=95), profile("lo", "webp", quality=10)
    alone = render(noise, jpeg, noise.size)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(8):
            pool.submit(render, noise, webp, noise.size)
            together = pool.submit(render, noise, jpeg, noise.size)
            assert together.result() == alone
