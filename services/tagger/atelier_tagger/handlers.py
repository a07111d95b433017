"""The tagger's pure logic: an uploaded asset and its pixels in, the tagged event out."""

from typing import Any

from PIL import Image

from atelier_shared import events
from atelier_tagger.tags import compute_tags


def tagged_event(uploaded: events.AssetUploaded, image: Image.Image) -> events.AssetTagged:
    """Tag the image and carry the asset header forward."""
    tagged = events.AssetTagged(asset=uploaded.asset, tags=compute_tags(image))
    tagged.asset.timeline.tagged_at.CopyFrom(events.now_timestamp())
    return tagged


def span_attributes(tags: events.Tags) -> dict[str, Any]:
    """Tags as span attributes (atelier.tags.*)."""
    return {
        "atelier.tags.brightness": tags.brightness,
        "atelier.tags.contrast": tags.contrast,
        "atelier.tags.colourfulness": tags.colourfulness,
        "atelier.tags.orientation": tags.orientation,
        "atelier.tags.sharpness": tags.sharpness,
        "atelier.tags.plain_background": tags.plain_background,
        "atelier.tags.product_shot": tags.product_shot,
        "atelier.tags.transparency": tags.transparency,
        "atelier.tags.grayscale": tags.grayscale,
        "atelier.tags.palette": [colour.hex for colour in tags.palette],
        "atelier.tags.labels": list(tags.labels),
    }
