"""Tags computed from pixels: each measure responds to what it claims to measure."""

import numpy as np
from PIL import Image, ImageFilter

from atelier_devtools.local import samples
from atelier_shared import events
from atelier_tagger.classifier import Seen
from atelier_tagger.tags import compute_tags, tagged_event


def test_product_shot_on_plain_background() -> None:
    tags = compute_tags(samples.product_shot())
    assert tags.plain_background and tags.product_shot
    assert tags.orientation == "square"
    assert "product-shot" in tags.labels
    assert tags.palette[0].hex.startswith("#f")  # The white studio background dominates.


def test_landscape_scene_is_not_a_product_shot() -> None:
    tags = compute_tags(samples.landscape())
    assert not tags.plain_background and not tags.product_shot
    assert tags.orientation == "landscape" and abs(tags.aspect_ratio - 1.6) < 0.01


def test_transparency_is_detected_and_measured() -> None:
    tags = compute_tags(samples.cutout())
    assert tags.transparency and 0.3 < tags.transparent_share < 0.9
    assert tags.plain_background  # A transparent border counts as a plain background.


def test_brightness_contrast_and_darkness() -> None:
    night = compute_tags(samples.night_scene())
    product = compute_tags(samples.product_shot())
    assert night.brightness < 0.3 < product.brightness
    assert "dark" in night.labels


def test_grayscale_and_colourfulness() -> None:
    grey = compute_tags(samples.landscape().convert("L").convert("RGB"))
    colour = compute_tags(samples.texture())
    assert grey.grayscale and grey.colourfulness < 1
    assert not colour.grayscale and colour.colourfulness > 40


def test_sharpness_drops_with_blur() -> None:
    sharp = samples.texture()
    assert compute_tags(sharp).sharpness > 4 * compute_tags(sharp.filter(ImageFilter.GaussianBlur(3))).sharpness


def test_dominant_hue_of_a_red_image() -> None:
    red = Image.fromarray(np.full((64, 64, 3), (220, 30, 30), dtype=np.uint8))
    tags = compute_tags(red)
    assert tags.dominant_hue < 10 or tags.dominant_hue > 350
    assert "hue-red" in tags.labels


def test_tagged_event_carries_the_asset_forward() -> None:
    header = events.AssetHeader(asset_id="a1", brand="acme", tier=events.TIER_PREVIEW)
    header.timeline.uploaded_at.CopyFrom(events.now_timestamp())
    seen = Seen([events.Subject(label="running shoe", confidence=0.7)], "footwear", 0.8)
    tagged = tagged_event(events.AssetUploaded(asset=header), compute_tags(samples.product_shot()), seen)
    assert tagged.asset.asset_id == "a1" and tagged.asset.tier == events.TIER_PREVIEW
    assert (tagged.tags.category, tagged.tags.subjects[0].label) == ("footwear", "running shoe")
    assert tagged.asset.timeline.tagged_at.seconds >= tagged.asset.timeline.uploaded_at.seconds
    assert tagged.tags.product_shot
