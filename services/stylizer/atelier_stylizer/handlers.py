"""The stylizer's pure logic: working sizes, batching ragged images, blending, cache keys, events."""

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from atelier_shared import events

# Networks downsample twice: inputs must be multiples of 4.
_MULTIPLE = 4


def working_size(width: int, height: int, working_side: int) -> tuple[int, int]:
    """Size to run the model at: longest side at most `working_side`, both sides multiples of 4."""
    scale = min(1.0, working_side / max(width, height))

    def fit(side: int) -> int:
        return max(_MULTIPLE, int(round(side * scale / _MULTIPLE)) * _MULTIPLE)

    return fit(width), fit(height)


def cost(original: events.ObjectRef, working_side: int) -> float:
    """A request's cost for batching: pixels at working size (what GPU memory scales with)."""
    width, height = working_size(original.width or working_side, original.height or working_side, working_side)
    return float(width * height)


def cache_key(sha256: str, model_ref: str, strength: float, working_side: int) -> str:
    """Object key of a stylized result: same content, model version and parameters, same key."""
    return f"cache/{sha256[:2]}/{sha256}/{model_ref}/s{strength:.3f}-w{working_side}.png"


@dataclass(frozen=True)
class Prepared:
    """An image resized to working size, as a float array, with its alpha kept aside."""

    rgb: np.ndarray  # HWC float32 0..1
    alpha: np.ndarray | None  # HW uint8


def prepare(image: Image.Image, working_side: int) -> Prepared:
    """Resize to working size and split off alpha (cutouts stay cutouts)."""
    size = working_size(image.width, image.height, working_side)
    resized = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if size != image.size else image
    alpha = np.asarray(resized.getchannel("A")) if resized.mode == "RGBA" else None
    rgb = np.asarray(resized.convert("RGB"), dtype=np.float32) / 255.0
    return Prepared(rgb=rgb, alpha=alpha)


def to_batch(items: list[Prepared]) -> np.ndarray:
    """One NCHW batch; smaller images are padded (mirrored) to the largest, then cropped after."""
    height = max(item.rgb.shape[0] for item in items)
    width = max(item.rgb.shape[1] for item in items)
    batch = np.empty((len(items), 3, height, width), dtype=np.float32)
    for index, item in enumerate(items):
        pad_h = height - item.rgb.shape[0]
        pad_w = width - item.rgb.shape[1]
        padded = np.pad(item.rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric") if pad_h or pad_w else item.rgb
        batch[index] = padded.transpose(2, 0, 1)
    return batch


def finish(output: np.ndarray, item: Prepared, strength: float) -> Image.Image:
    """Crop one output, blend it over the content by `strength`, restore alpha."""
    height, width = item.rgb.shape[:2]
    stylized = output[:, :height, :width].transpose(1, 2, 0)
    blended = strength * stylized + (1.0 - strength) * item.rgb
    pixels = (np.clip(blended, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    result = Image.fromarray(pixels, "RGB")
    if item.alpha is not None:
        result.putalpha(Image.fromarray(item.alpha, "L"))
    return result


def stylized_event(
    request: events.StyleRequested,
    stylized: events.ObjectRef,
    model_ref: str,
    backend: str,
    timings: events.StylizeTimings,
    batch_size: int,
    cache_hit: bool,
) -> events.AssetStylized:
    """The event for a finished (or cached) result."""
    event = events.AssetStylized(
        asset=request.asset,
        route=request.route,
        model=model_ref,
        backend=backend,
        stylized=stylized,
        timings=timings,
        batch_size=batch_size,
        cache_hit=cache_hit,
    )
    event.asset.timeline.stylized_at.CopyFrom(events.now_timestamp())
    return event


@dataclass
class PoolMeter:
    """This instance's per-item service time (exponentially weighted) and throughput."""

    smoothing: float = 0.3
    item_service_ms: float = 0.0
    _items: int = 0
    _batches: int = 0
    _since: float = field(default_factory=time.monotonic)

    def observe(self, seconds: float, items: int) -> None:
        """A batch of `items` took `seconds` to handle."""
        if items <= 0:
            return
        per_item = seconds * 1000 / items
        if self.item_service_ms == 0.0:
            self.item_service_ms = per_item
        else:
            self.item_service_ms += self.smoothing * (per_item - self.item_service_ms)
        self._items += items
        self._batches += 1

    def report(self, pool: str, instance: str, buffered: int, paused: int) -> events.PoolReported:
        """The report for the interval since the last one (and start a new interval)."""
        now = time.monotonic()
        elapsed = max(now - self._since, 1e-9)
        reported = events.PoolReported(
            pool=pool,
            instance=instance,
            item_service_ms=self.item_service_ms,
            items_per_second=self._items / elapsed,
            mean_batch_size=self._items / self._batches if self._batches else 0.0,
            buffered=buffered,
            paused_partitions=paused,
            reported_at=events.now_timestamp(),
        )
        self._items, self._batches, self._since = 0, 0, now
        return reported
