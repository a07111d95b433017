"""The stylizer's batch handler: micro-batches of style requests through one model, with a result cache.

A batch holds requests for one style (the batch key) up to a count and a pixel budget. Results are
stored at a key made of the content hash, model version and parameters: a repeat runs no
inference, and a redelivery overwrites the same object.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from atelier_shared import (
    Delivery,
    InferenceFailed,
    ObjectStore,
    Produced,
    StoredObject,
    TransientError,
    events,
    get_logger,
    sha256_hex,
    tracer,
)
from atelier_shared.images import ImageInfo, ImageLimits, decode, encode, probe
from atelier_stylizer.batches import Prepared, cache_key, finish, prepare, to_batch, working_size
from atelier_stylizer.devicedecode import MAX_PIXELS, DeviceDecoder
from atelier_stylizer.inference import Engine
from atelier_stylizer.models import Models
from atelier_stylizer.reporting import PoolMeter

log = get_logger(__name__)

INFERENCE_SECONDS = Histogram(
    "atelier_inference_seconds",
    "Model time per inference batch.",
    ["pool", "model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFERENCE_ITEMS = Counter("atelier_inference_items_total", "Images run through a model.", ["pool", "model"])
INFERENCE_BATCH = Histogram(
    "atelier_inference_batch_size", "Images per model call.", ["pool"], buckets=(1, 2, 4, 8, 16, 32, 64)
)
ITEM_SERVICE_SECONDS = Histogram(
    "atelier_item_service_seconds",
    "Per-item service time: a batch's share of the pool's time (batches in flight share it) divided by its items.",
    ["pool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CACHE_HITS = Counter("atelier_cache_hits_total", "Requests served from the result cache.", ["pool"])


def _ref_from(stored: StoredObject) -> events.ObjectRef:
    return events.ObjectRef(
        bucket=stored.bucket,
        key=stored.key,
        sha256=stored.metadata.get("sha256", ""),
        size=stored.size,
        width=int(stored.metadata.get("width", 0)),
        height=int(stored.metadata.get("height", 0)),
        content_type=stored.content_type,
    )


async def renew_aging(store: ObjectStore, found: Sequence[StoredObject], after: timedelta | None) -> None:
    """Cached results written longer than `after` ago are written again in place, so that a cache hit
    leaves its result time to reach the exporter before the store's lifecycle rule expires it (None:
    results do not expire)."""
    if after is None:
        return
    now = datetime.now(UTC)
    await asyncio.gather(
        *(store.renew(stored) for stored in found if stored.modified and now - stored.modified > after)
    )


def device_decodable(info: ImageInfo) -> bool:
    """Whether Pillow would do no more than decode and resize this image, so the GPU can do it instead:
    a JPEG in RGB or greyscale, upright, with no colour profile but our own sRGB to apply, and not so
    large that its full-size decode would crowd the batch on the device."""
    return (
        info.content_type == "image/jpeg"
        and info.mode in ("RGB", "L")
        and info.orientation == 1
        and not info.foreign_profile
        and info.pixels <= MAX_PIXELS
    )


def load_original(data: bytes, limits: ImageLimits, side: int, decoder: DeviceDecoder | None) -> tuple[Prepared, str]:
    """An original at working size, and which decoder made it: the GPU's where it can, else Pillow."""
    info = probe(data, limits)
    size = working_size(*info.upright_size, side)
    if decoder is not None and device_decodable(info):
        try:
            return Prepared(decoder(data, *size), None), "nvjpeg"
        except RuntimeError as exc:  # nvJPEG refuses some valid JPEGs (and all corrupt ones: Pillow says why).
            log.info("the GPU decoder refused a JPEG; Pillow decodes it", error=str(exc)[:200])
    # Decoded straight to working size: one resampling, not a fit within `side` and then another to
    # the multiple of 4 (a 1080x1350 portrait went to 819x1024, then to 820x1024).
    return prepare(decode(data, limits, info=info, size=size), side), "pillow"


def _span(name: str, delivery: Delivery, start_ns: int, end_ns: int, **attributes: object) -> None:
    tracer().start_span(name, context=delivery.context, start_time=start_ns, attributes=attributes).end(end_ns)  # type: ignore[arg-type]


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
class _Render:
    """The inference of one batch: what ran, how long each part took."""

    engine: Engine
    items: list[tuple[str, Delivery, Prepared]]
    decode_ms: float
    start_ns: int = 0
    end_ns: int = 0


# What a result is stored as for the exporter: uncompressed TIFF, which the stylizer writes in 0.5 ms and
# the exporter reads in 0.75 ms at 1024 px, where PNG took 39 and 17 ms of a core, for 4.6x fewer bytes
# (bench/results/codecs-cpu-2core.md): on a GPU node, where the network takes 4 ms a megapixel, PNG
# bounded a pool. Results are also the cache (and `GET /v1/assets/{id}` links them): 3.1 MB at 1024 px.
RESULT_TYPE = "image/tiff"

# More inference failures in a row than this is the engine's trouble (a broken device), not the inputs'.
_ENGINE_FAILURES = 3


class Stylizer:
    """The batch handler of one pool."""

    def __init__(
        self,
        pool: str,
        store: ObjectStore,
        models: Models,
        bucket: str,
        limits: ImageLimits,
        decoder: DeviceDecoder | None = None,
        renew_after: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._models = models
        self._bucket = bucket
        self._limits = limits
        self._decoder = decoder
        self._renew_after = renew_after
        self.meter = PoolMeter()
        self._failures_in_a_row = 0
        CACHE_HITS.labels(pool)  # At zero from the start: no hits yet reads as 0, not as no data.

    async def stylize(self, batch: Sequence[Delivery]) -> list[Produced | BaseException]:
        """StyleRequested in, AssetStylized out, for every request of a batch (each may fail alone)."""
        share = self.meter.begin()
        try:
            outcomes = await self._stylize(batch, time.monotonic())
        except BaseException:
            self.meter.end(share, 0)
            raise
        ITEM_SERVICE_SECONDS.labels(self._pool).observe(self.meter.end(share, len(batch)) / len(batch))
        return outcomes

    async def _stylize(self, batch: Sequence[Delivery], started: float) -> list[Produced | BaseException]:
        """The batch's outcomes, as stylize() returns them (`started`: when it began, for its timings)."""
        engine = await self._models.engine(batch[0].event.route.style)
        side = self._models.working_side(engine)
        keys = [
            cache_key(
                d.event.asset.brand, d.event.asset.original.sha256, engine.manifest.ref, d.event.route.strength, side
            )
            for d in batch
        ]
        leaders = {key: batch[keys.index(key)] for key in dict.fromkeys(keys)}  # Each result's first asking.
        found = await asyncio.gather(*(self._cached(key, delivery) for key, delivery in leaders.items()))
        results: dict[str, events.ObjectRef | Exception] = {
            key: _ref_from(stored) for key, stored in zip(leaders, found, strict=True) if stored is not None
        }
        timings: dict[str, events.StylizeTimings] = {}
        misses = [key for key in leaders if key not in results]
        if misses:
            await self._render({key: leaders[key] for key in misses}, engine, side, results, timings)
        outcomes: list[Produced | BaseException] = []
        for delivery, key in zip(batch, keys, strict=True):
            result = results[key]
            if isinstance(result, Exception):
                outcomes.append(result)
            else:
                outcomes.append(self._stylized(delivery, result, engine, timings.get(key), len(misses), started))
        return outcomes

    async def _cached(self, key: str, delivery: Delivery) -> StoredObject | None:
        """The cached result, renewed if aging, looked up in the asking asset's trace."""
        with trace.use_span(delivery.span, end_on_exit=False):
            stored = await self._store.stat(self._bucket, key)
            if stored is not None:
                await renew_aging(self._store, [stored], self._renew_after)
        return stored

    def _stylized(
        self,
        delivery: Delivery,
        result: events.ObjectRef,
        engine: Engine,
        timing: events.StylizeTimings | None,
        batch_size: int,
        started: float,
    ) -> events.AssetStylized:
        hit = timing is None
        if hit:
            CACHE_HITS.labels(self._pool).inc()
        timings = events.StylizeTimings()
        if timing is not None:
            timings.CopyFrom(timing)
        timings.queue_wait_ms = delivery.queue_wait_ms
        timings.total_ms = timings.queue_wait_ms + (time.monotonic() - started) * 1000
        size = 0 if hit else batch_size
        delivery.span.set_attributes(
            {"atelier.model": engine.manifest.ref, "atelier.cache_hit": hit, "atelier.batch_size": size}
        )
        backend = "cache" if hit else engine.backend
        return stylized_event(delivery.event, result, engine.manifest.ref, backend, timings, size, hit)

    async def _load(self, delivery: Delivery, side: int) -> Prepared:
        original = delivery.event.asset.original
        with trace.use_span(delivery.span, end_on_exit=False):
            data = await self._store.get(original.bucket, original.key)
        start = time.time_ns()
        prepared, decoder = await asyncio.to_thread(load_original, data, self._limits, side, self._decoder)
        height, width = prepared.rgb.shape[:2]
        _span(
            "decode",
            delivery,
            start,
            time.time_ns(),
            **{"image.width": width, "image.height": height, "atelier.decoder": decoder},
        )
        return prepared

    async def _render(
        self,
        leaders: dict[str, Delivery],
        engine: Engine,
        side: int,
        results: dict[str, events.ObjectRef | Exception],
        timings: dict[str, events.StylizeTimings],
    ) -> None:
        """Decode, run and store the results not in the cache; each failure is its request's own."""
        decode_started = time.monotonic()
        loaded = await asyncio.gather(*(self._load(d, side) for d in leaders.values()), return_exceptions=True)
        render = _Render(engine, [], (time.monotonic() - decode_started) * 1000)
        for (key, delivery), item in zip(leaders.items(), loaded, strict=True):
            if isinstance(item, BaseException):
                results[key] = item if isinstance(item, Exception) else RuntimeError(repr(item))
            else:
                render.items.append((key, delivery, item))
        if render.items:
            await self._run(render, results, timings)

    async def _run(
        self,
        render: _Render,
        results: dict[str, events.ObjectRef | Exception],
        timings: dict[str, events.StylizeTimings],
    ) -> None:
        """Infer and store a batch. An input the model fails on is its request's permanent error: a batch
        that fails is run again one image at a time, so one bad input costs the others nothing."""
        try:
            outputs = await self._infer(render)
        except Exception as exc:
            self._failures_in_a_row += 1
            engine_trouble = self._failures_in_a_row > _ENGINE_FAILURES
            if engine_trouble or isinstance(exc, (TransientError, MemoryError)) or "OutOfMemory" in type(exc).__name__:
                raise  # Not this input's fault: retried (and dead-lettered only as the runtime's policy says).
            if len(render.items) > 1:
                log.warning("batch failed; running its images one at a time", error=repr(exc))
                for item in render.items:
                    await self._run(_Render(render.engine, [item], render.decode_ms), results, timings)
                return
            message = f"the model cannot process this image ({type(exc).__name__}: {exc})"
            results[render.items[0][0]] = InferenceFailed(message[:500])
            return
        self._failures_in_a_row = 0
        stored = await asyncio.gather(
            *(self._store_one(render, index, outputs[index]) for index in range(len(render.items))),
            return_exceptions=True,
        )
        for (key, _, _), outcome in zip(render.items, stored, strict=True):
            if isinstance(outcome, BaseException):
                results[key] = outcome if isinstance(outcome, Exception) else RuntimeError(repr(outcome))
            else:
                results[key], timings[key] = outcome

    async def _infer(self, render: _Render) -> np.ndarray:
        batch = to_batch([item for _, _, item in render.items])
        model = render.engine.manifest.ref
        render.start_ns = time.time_ns()
        outputs = await asyncio.to_thread(render.engine.run, batch)
        render.end_ns = time.time_ns()
        inference_ms = (render.end_ns - render.start_ns) / 1e6
        INFERENCE_SECONDS.labels(self._pool, model).observe(inference_ms / 1000)
        INFERENCE_ITEMS.labels(self._pool, model).inc(len(render.items))
        INFERENCE_BATCH.labels(self._pool).observe(len(render.items))
        log.info("inference", model=model, batch_size=len(render.items), inference_ms=round(inference_ms, 1))
        return outputs

    async def _store_one(
        self, render: _Render, index: int, output: np.ndarray
    ) -> tuple[events.ObjectRef, events.StylizeTimings]:
        key, delivery, item = render.items[index]
        engine = render.engine
        attributes = {"atelier.model": engine.manifest.ref, "atelier.backend": engine.backend}
        _span(
            "inference",
            delivery,
            render.start_ns,
            render.end_ns,
            **attributes,
            **{"atelier.batch_size": len(render.items)},
        )
        encode_start = time.time_ns()
        image = finish(output, item, delivery.event.route.strength)
        data = await asyncio.to_thread(encode, image, RESULT_TYPE)
        encode_end = time.time_ns()
        _span("encode", delivery, encode_start, encode_end, **{"image.bytes": len(data)})
        ref = events.ObjectRef(
            bucket=self._bucket,
            key=key,
            sha256=sha256_hex(data),
            size=len(data),
            width=image.width,
            height=image.height,
            content_type=RESULT_TYPE,
        )
        metadata = {"sha256": ref.sha256, "width": str(ref.width), "height": str(ref.height)}
        with trace.use_span(delivery.span, end_on_exit=False):
            await self._store.put(self._bucket, key, data, RESULT_TYPE, metadata=metadata)
        timing = events.StylizeTimings(
            decode_ms=render.decode_ms,
            inference_ms=(render.end_ns - render.start_ns) / 1e6,
            encode_ms=(encode_end - encode_start) / 1e6,
        )
        return ref, timing
