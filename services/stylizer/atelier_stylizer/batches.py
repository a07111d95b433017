"""Images to network batches and back (pure): working sizes, costs, ragged batches, blending, cache keys."""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from atelier_shared import events
from atelier_shared.images import resize

# Networks downsample twice: inputs must be multiples of 4.
_MULTIPLE = 4
# And their reflection padding needs room: smaller sides (a 1x1 PNG) are upscaled to this.
MIN_SIDE = 32


def working_size(width: int, height: int, working_side: int) -> tuple[int, int]:
    """Size to run the model at: longest side at most `working_side`, both sides multiples of 4 and at
    least MIN_SIDE (a tiny image is upscaled; the renditions keep its size)."""
    scale = min(1.0, working_side / max(width, height))

    def fit(side: int) -> int:
        return max(MIN_SIDE, int(round(side * scale / _MULTIPLE)) * _MULTIPLE)

    return fit(width), fit(height)


def cost(original: events.ObjectRef, working_side: int) -> float:
    """A request's cost for batching: pixels at working size (what GPU memory scales with)."""
    width, height = working_size(original.width or working_side, original.height or working_side, working_side)
    return float(width * height)


def cache_key(brand: str, sha256: str, model_ref: str, strength: float, working_side: int) -> str:
    """Object key of a stylized result: same brand, content, model version and parameters, same key.
    Brands never share results: a hit on another brand's would tell that it had sent the same image."""
    return f"{brand}/cache/{sha256[:2]}/{sha256}/{model_ref}/s{strength:.3f}-w{working_side}.tif"


@dataclass(frozen=True)
class Prepared:
    """An image resized to working size, as 8-bit RGB, with its alpha kept aside."""

    rgb: np.ndarray  # HWC uint8
    alpha: np.ndarray | None  # HW uint8


def prepare(image: Image.Image, working_side: int) -> Prepared:
    """Resize to working size and split off alpha (cutouts stay cutouts)."""
    resized = resize(image, working_size(image.width, image.height, working_side))
    alpha = np.asarray(resized.getchannel("A")) if resized.mode == "RGBA" else None
    return Prepared(rgb=np.asarray(resized.convert("RGB")), alpha=alpha)


def to_batch(items: list[Prepared]) -> np.ndarray:
    """One (N, H, W, 3) uint8 batch; smaller images are padded (mirrored) to the largest, then
    cropped after."""
    height = max(item.rgb.shape[0] for item in items)
    width = max(item.rgb.shape[1] for item in items)
    batch = np.empty((len(items), height, width, 3), dtype=np.uint8)
    for index, item in enumerate(items):
        pad_h = height - item.rgb.shape[0]
        pad_w = width - item.rgb.shape[1]
        batch[index] = (
            np.pad(item.rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric") if pad_h or pad_w else item.rgb
        )
    return batch


def finish(output: np.ndarray, item: Prepared, strength: float) -> Image.Image:
    """Crop one output, blend it over the content by `strength`, restore alpha."""
    height, width = item.rgb.shape[:2]
    pixels = np.ascontiguousarray(output[:height, :width])
    if strength < 1.0:
        blended = strength * pixels.astype(np.float32) + (1.0 - strength) * item.rgb.astype(np.float32)
        pixels = (blended + 0.5).astype(np.uint8)
    result = Image.fromarray(pixels, "RGB")
    if item.alpha is not None:
        result.putalpha(Image.fromarray(item.alpha, "L"))
    return result
