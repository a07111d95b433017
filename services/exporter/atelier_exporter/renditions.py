"""Renditions: which the brand wants, and the stylized image resized and encoded for each (pure)."""

from PIL import Image

from atelier_shared import ExportProfileSpec, events
from atelier_shared.brands import DEFAULT_EXPORT_PROFILES
from atelier_shared.images import encode, fit_within, resize

CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {"webp": "webp", "avif": "avif", "jpeg": "jpg", "png": "png"}


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


def target_size(full: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The rendition's size: the original's aspect and size, capped at `max_side` (0: uncapped)."""
    return fit_within(full, max_side) if max_side else full


def render(image: Image.Image, profile: events.ExportProfile, full: tuple[int, int], fast: bool = False) -> bytes:
    """Resize (Lanczos) to the profile's size and encode in its format with the sRGB profile (`fast`:
    the codec's quicker effort, for previews)."""
    size = target_size(full, profile.max_side)
    resized = resize(image, size)
    if profile.format == "jpeg" and resized.mode == "RGBA":
        background = Image.new("RGB", resized.size, (255, 255, 255))
        background.paste(resized, mask=resized.getchannel("A"))
        resized = background
    return encode(resized, CONTENT_TYPES[profile.format], quality=profile.quality or 85, fast=fast)
