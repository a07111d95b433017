"""Working sizes, ragged batches, blending, alpha, cache keys."""

import io

import numpy as np
from PIL import Image

from atelier_shared import events
from atelier_stylizer import batches


def test_working_size_keeps_aspect_in_multiples_of_four() -> None:
    assert batches.working_size(1080, 1080, 512) == (512, 512)
    assert batches.working_size(4000, 3000, 1024) == (1024, 768)
    assert batches.working_size(101, 37, 1024) == (100, 36)  # Not upscaled above the minimum; rounded to 4.


def test_cost_is_working_pixels() -> None:
    assert batches.cost(events.ObjectRef(width=4000, height=3000), 1024) == 1024 * 768


def test_ragged_images_batch_and_crop_back() -> None:
    wide = batches.prepare(Image.new("RGB", (200, 100), (255, 0, 0)), 128)
    tall = batches.prepare(Image.new("RGB", (60, 120), (0, 0, 255)), 128)
    batch = batches.to_batch([wide, tall])
    assert batch.shape == (2, 120, 128, 3) and batch.dtype == np.uint8
    outputs = batch.copy()
    assert batches.finish(outputs[0], wide, 1.0).size == (128, 64)
    restored = batches.finish(outputs[1], tall, 1.0)
    assert restored.size == (60, 120)
    assert np.asarray(restored)[..., 2].min() == 255  # Padding never leaks into the crop.


def test_strength_blends_over_the_content_and_alpha_is_restored() -> None:
    content = Image.new("RGBA", (40, 40), (0, 0, 0, 255))
    content.putpixel((0, 0), (0, 0, 0, 0))
    prepared = batches.prepare(content, 64)
    white = np.full((40, 40, 3), 255, dtype=np.uint8)
    half = batches.finish(white, prepared, 0.5)
    assert half.mode == "RGBA" and half.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert abs(half.getpixel((10, 10))[0] - 128) <= 1  # type: ignore[index]


def test_cache_key_changes_with_every_input_that_changes_the_result_and_with_the_brand() -> None:
    """Regression (the brand): brands shared cached results, so a brand uploading an image another
    brand had stylized saw `cache_hit: true`, and was linked the object made for the other's request."""
    base = batches.cache_key("acme", "ab" * 32, "tiles-quality@1", 0.8, 1024)
    assert base == batches.cache_key("acme", "ab" * 32, "tiles-quality@1", 0.8, 1024)
    for other in (
        batches.cache_key("lumen", "ab" * 32, "tiles-quality@1", 0.8, 1024),
        batches.cache_key("acme", "cd" * 32, "tiles-quality@1", 0.8, 1024),
        batches.cache_key("acme", "ab" * 32, "tiles-quality@2", 0.8, 1024),
        batches.cache_key("acme", "ab" * 32, "tiles-quality@1", 0.7, 1024),
        batches.cache_key("acme", "ab" * 32, "tiles-quality@1", 0.8, 512),
    ):
        assert other != base


def test_tiny_images_run_at_the_minimum_side() -> None:
    """Regression: a 1x1 PNG ran at 4x4, smaller than the network's reflection padding, and crashed it."""
    assert batches.working_size(1, 1, 1024) == (batches.MIN_SIDE, batches.MIN_SIDE)
    assert batches.working_size(2, 400, 1024) == (batches.MIN_SIDE, 400)


def test_an_original_is_resampled_once_to_its_working_size() -> None:
    """Regression: the stylizer fitted a 1080x1350 portrait within 1024 px (819x1024), then resized that
    again to the working size's multiple of 4 (820x1024): two Lanczos passes, a softer image and 7 ms
    more on a 2-core EPYC. Now the decode makes the working size in one pass."""
    from atelier_shared.images import ImageLimits
    from atelier_stylizer.stylizer import load_original
    from tests.conftest import jpeg_bytes

    data = jpeg_bytes(1080, 1350)
    prepared, used = load_original(data, ImageLimits(), 1024, None)
    with Image.open(io.BytesIO(data)) as original:
        once = original.convert("RGB").resize((820, 1024), Image.Resampling.LANCZOS, reducing_gap=3.0)
    assert used == "pillow" and prepared.rgb.shape == (1024, 820, 3)
    assert np.array_equal(prepared.rgb, np.asarray(once))
