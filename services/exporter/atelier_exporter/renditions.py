"""Renditions: which the brand wants, and the stylized image resized and encoded for each (pure)."""

from PIL import Image

from atelier_shared import ExportProfileSpec, events
from atelier_shared.brands import DEFAULT_EXPORT_PROFILES
from atelier_shared.images import encode, fit_within, resize

CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {"webp": "webp", "avif": "avif", "jpeg": "jpg", "png": "png"}
# The longest side a format can hold, where it is below the largest original the uploader accepts.
FORMAT_MAX_SIDE = {"webp": 16_383}


def profiles_for(route: events.RouteDecision) -> list[events.ExportProfile]:
    """The profiles the router chose, or the defaults for events that carry none."""
    if route.export_profiles:
        return list(route.export_profiles)
    return [_as_event(spec) for spec in DEFAULT_EXPORT_PROFILES]


def _as_event(spec: ExportProfileSpec) -> events.ExportProfile:
    return events.ExportProfile(name=spec.name, format=spec.format, max_side=spec.max_side, quality=spec.quality)


def rendition_key(brand: str, asset_id: str, profile: events.ExportProfile) -> str:
    """Deterministic: a redelivery or a re-render overwrites the same object."""
    return f"{brand}/{asset_id}/{profile.name}.{EXTENSIONS[profile.format]}"


def target_size(full: tuple[int, int], profile: events.ExportProfile) -> tuple[int, int]:
    """The rendition's size: the original's aspect and size, capped at the profile's `max_side` (0:
    uncapped) and at what its format can hold."""
    caps = [side for side in (profile.max_side, FORMAT_MAX_SIDE.get(profile.format, 0)) if side]
    return fit_within(full, min(caps)) if caps else full


def render(image: Image.Image, profile: events.ExportProfile, full: tuple[int, int], fast: bool = False) -> bytes:
    """Resize (Lanczos) to the profile's size and encode in its format with the sRGB profile (`fast`:
    the codec's quicker effort, for previews). Safe to call for several profiles of one image at once."""
    size = target_size(full, profile)
    resized = resize(image, size)
    if resized is image:  # Pillow keeps a save's settings on the image while it runs: each encode needs its own.
        resized = image.copy()
    if profile.format == "jpeg" and resized.mode == "RGBA":
        background = Image.new("RGB", resized.size, (255, 255, 255))
        background.paste(resized, mask=resized.getchannel("A"))
        resized = background
    return encode(resized, CONTENT_TYPES[profile.format], quality=profile.quality or 85, fast=fast)
