"""Stylizer wiring: micro-batches of style requests through one model, with a result cache.

A batch holds requests for one style (the batch key) up to a count and a pixel budget. Results are
stored at a key made of the content hash, model version and parameters: a repeat runs no
inference, and a redelivery overwrites the same object.
"""

import asyncio
import os
import socket
import time
from collections.abc import Sequence

from opentelemetry import trace
from prometheus_client import Counter, Histogram

from atelier_shared import (
    BatchPolicy,
    ConsumerConfig,
    Delivery,
    ObjectStore,
    Outcome,
    Outgoing,
    PipelineService,
    StoredObject,
    TransientError,
    events,
    get_logger,
    sha256_hex,
    topics,
    tracer,
)
from atelier_shared.events import model_tier_from_name
from atelier_shared.images import decode, encode
from atelier_stylizer import handlers
from atelier_stylizer.inference import Engine, resolve_device
from atelier_stylizer.models import Models
from atelier_stylizer.registry import ModelRegistry
from atelier_stylizer.settings import StylizerSettings

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
    "Per-item service time: a batch's handling time divided by its items.",
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


def _span(name: str, delivery: Delivery, start_ns: int, end_ns: int, **attributes: object) -> None:
    tracer().start_span(name, context=delivery.context, start_time=start_ns, attributes=attributes).end(end_ns)  # type: ignore[arg-type]


class Stylizer:
    """The batch handler of one pool."""

    def __init__(self, settings: StylizerSettings, store: ObjectStore, models: Models) -> None:
        self._settings = settings
        self._store = store
        self._models = models
        self._pool = settings.stylizer_pool
        self._bucket = settings.bucket_stylized
        self._stylized_topic = settings.topics.name(topics.STYLIZED)
        self.meter = handlers.PoolMeter()

    async def handle(self, batch: Sequence[Delivery]) -> list[Outcome]:
        """Stylize one batch; each delivery gets its events or its own error."""
        started = time.monotonic()
        engine = await self._models.engine(batch[0].event.route.style)
        side = self._models.working_side(engine)
        keys = [
            handlers.cache_key(d.event.asset.original.sha256, engine.manifest.ref, d.event.route.strength, side)
            for d in batch
        ]
        unique = list(dict.fromkeys(keys))
        found = await asyncio.gather(*(self._store.stat(self._bucket, key) for key in unique))
        results: dict[str, events.ObjectRef | Exception] = {
            key: _ref_from(stored) for key, stored in zip(unique, found, strict=True) if stored is not None
        }
        timings: dict[str, events.StylizeTimings] = {}
        misses = [key for key in unique if key not in results]
        if misses:
            leaders = {key: batch[keys.index(key)] for key in misses}
            await self._render(leaders, engine, side, results, timings)
        outcomes: list[Outcome] = []
        for delivery, key in zip(batch, keys, strict=True):
            result = results[key]
            if isinstance(result, Exception):
                outcomes.append(result)
                continue
            hit = key not in timings
            if hit:
                CACHE_HITS.labels(self._pool).inc()
            timing = events.StylizeTimings()
            if not hit:
                timing.CopyFrom(timings[key])
            timing.queue_wait_ms = delivery.meta.get("queue_wait_ms", 0.0)
            timing.total_ms = timing.queue_wait_ms + (time.monotonic() - started) * 1000
            backend = "cache" if hit else engine.backend
            event = handlers.stylized_event(
                delivery.event, result, engine.manifest.ref, backend, timing, 0 if hit else len(misses), hit
            )
            delivery.span.set_attributes(
                {"atelier.model": engine.manifest.ref, "atelier.cache_hit": hit, "atelier.batch_size": len(misses)}
            )
            outcomes.append([Outgoing(self._stylized_topic, delivery.asset_id, event)])
        elapsed = time.monotonic() - started
        ITEM_SERVICE_SECONDS.labels(self._pool).observe(elapsed / len(batch))
        self.meter.observe(elapsed, len(batch))
        return outcomes

    async def _load(self, delivery: Delivery, side: int) -> handlers.Prepared:
        original = delivery.event.asset.original
        with trace.use_span(delivery.span, end_on_exit=False):
            data = await self._store.get(original.bucket, original.key)
        start = time.time_ns()
        image = await asyncio.to_thread(decode, data, self._settings.limits, side)
        prepared = await asyncio.to_thread(handlers.prepare, image, side)
        _span("decode", delivery, start, time.time_ns(), **{"image.width": image.width, "image.height": image.height})
        return prepared

    async def _render(
        self,
        leaders: dict[str, Delivery],
        engine: Engine,
        side: int,
        results: dict[str, events.ObjectRef | Exception],
        timings: dict[str, events.StylizeTimings],
    ) -> None:
        keys = list(leaders)
        decode_started = time.monotonic()
        loaded = await asyncio.gather(*(self._load(leaders[key], side) for key in keys), return_exceptions=True)
        decode_ms = (time.monotonic() - decode_started) * 1000
        ready: list[tuple[str, handlers.Prepared]] = []
        for key, item in zip(keys, loaded, strict=True):
            if isinstance(item, Exception):
                results[key] = item
            else:
                ready.append((key, item))  # type: ignore[arg-type]
        if not ready:
            return
        batch = handlers.to_batch([item for _, item in ready])
        start_ns = time.time_ns()
        outputs = await asyncio.to_thread(engine.run, batch)
        end_ns = time.time_ns()
        inference_ms = (end_ns - start_ns) / 1e6
        INFERENCE_SECONDS.labels(self._pool, engine.manifest.ref).observe(inference_ms / 1000)
        INFERENCE_ITEMS.labels(self._pool, engine.manifest.ref).inc(len(ready))
        INFERENCE_BATCH.labels(self._pool).observe(len(ready))
        log.info("inference", model=engine.manifest.ref, batch_size=len(ready), inference_ms=round(inference_ms, 1))

        async def store_one(index: int, key: str, item: handlers.Prepared) -> None:
            delivery = leaders[key]
            _span(
                "inference",
                delivery,
                start_ns,
                end_ns,
                **{
                    "atelier.model": engine.manifest.ref,
                    "atelier.backend": engine.backend,
                    "atelier.batch_size": len(ready),
                },
            )
            encode_start = time.time_ns()
            image = handlers.finish(outputs[index], item, leaders[key].event.route.strength)
            data = await asyncio.to_thread(encode, image, "image/png")
            encode_end = time.time_ns()
            _span("encode", delivery, encode_start, encode_end, **{"image.bytes": len(data)})
            ref = events.ObjectRef(
                bucket=self._bucket,
                key=key,
                sha256=sha256_hex(data),
                size=len(data),
                width=image.width,
                height=image.height,
                content_type="image/png",
            )
            with trace.use_span(delivery.span, end_on_exit=False):
                await self._store.put(
                    self._bucket,
                    key,
                    data,
                    "image/png",
                    metadata={"sha256": ref.sha256, "width": str(ref.width), "height": str(ref.height)},
                )
            results[key] = ref
            timings[key] = events.StylizeTimings(
                decode_ms=decode_ms, inference_ms=inference_ms, encode_ms=(encode_end - encode_start) / 1e6
            )

        stored = await asyncio.gather(
            *(store_one(index, key, item) for index, (key, item) in enumerate(ready)), return_exceptions=True
        )
        for (key, _), outcome in zip(ready, stored, strict=True):
            if isinstance(outcome, Exception):
                results[key] = outcome


class StylizerService(PipelineService):
    """A stylizer pool instance: the pipeline service plus its periodic pool report."""

    def __init__(self, settings: StylizerSettings) -> None:
        store = ObjectStore(settings)
        registry = ModelRegistry.open(settings.registry_url, store, settings.model_cache_dir)
        self.stylizer = Stylizer(settings, store, Models(registry, settings))
        names = settings.topics
        pool_topics = topics.POOL_TOPICS[model_tier_from_name(settings.stylizer_pool)]
        cost_side = settings.stylizer_working_side or 1024
        config = ConsumerConfig(
            group_id=names.group(f"stylizer-{settings.stylizer_pool}"),
            topics={names.name(spec): priority for priority, spec in enumerate(pool_topics)},
            batch=BatchPolicy(
                max_items=settings.stylizer_max_batch
                or (8 if resolve_device(settings.stylizer_device) == "cuda" else 1),
                max_wait_ms=settings.stylizer_max_wait_ms,
                max_cost=settings.stylizer_max_batch_pixels,
            ),
            buffer_per_priority=settings.stylizer_buffer,
            batch_key=lambda delivery: delivery.event.route.style if delivery.error is None else None,
            cost=lambda delivery: (
                handlers.cost(delivery.event.asset.original, cost_side) if delivery.error is None else 1.0
            ),
        )
        super().__init__(f"stylizer-{settings.stylizer_pool}", settings, config, self.stylizer.handle, store)
        self._pool = settings.stylizer_pool
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._report_interval_s = settings.pool_report_interval_s
        self._stats_topic = names.name(topics.POOL_STATS)
        self._reporter: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self._reporter = asyncio.create_task(self._report(), name="pool-report")

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
        await super().stop()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self._report_interval_s)
            report = self.stylizer.meter.report(
                self._pool, self._instance, self.runtime.buffered, self.runtime.paused_partitions
            )
            try:
                await self.producer.send(Outgoing(self._stats_topic, self._pool, report))
            except TransientError as exc:
                log.warning("pool report not sent", error=str(exc))


def build(settings: StylizerSettings) -> PipelineService:
    """The stylizer service for the configured pool."""
    return StylizerService(settings)
