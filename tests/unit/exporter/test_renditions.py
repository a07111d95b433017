"""Renditions (size, format, colour profile, alpha) and webhook signatures."""

import io

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
    assert target_size((4000, 3000), 2048) == (2048, 1536)
    assert target_size((800, 600), 2048) == (800, 600)
    assert target_size((800, 600), 0) == (800, 600)


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
