"""The one consume, decode, handle, produce, commit loop every service runs.

At-least-once: a record's offset is committed only after its outputs (or its dead-letter record)
are acknowledged by all in-sync replicas. Outputs go to deterministic object keys, so a
redelivery overwrites instead of duplicating.

Around the handler: a trace span per record (child of the producer's, from the traceparent
header), a queue-wait span, logs bound to the asset id, metrics, retries with back-off for
transient errors, dead-lettering for permanent ones, and backpressure: when the in-memory buffer
of a priority is full its partitions are paused (the consumer stays in its group).
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from atelier_shared import metrics
from atelier_shared.errors import AtelierError, TransientError
from atelier_shared.events import DeadLettered, Tier, now_timestamp
from atelier_shared.kafka import Delivery, EventProducer, Outgoing, decode
from atelier_shared.logging import bind_asset, get_logger, unbind
from atelier_shared.scheduling import BatchPolicy, FairQueue, OffsetTracker
from atelier_shared.settings import AtelierSettings
from atelier_shared.topics import DEAD_LETTER
from atelier_shared.tracing import context_from, traceparent_of, tracer

Outcome = Sequence[Outgoing] | BaseException
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[Sequence[Outcome]]]
RecordHandler = Callable[[Delivery], Awaitable[Sequence[Outgoing]]]

log = get_logger(__name__)


def per_record(handler: RecordHandler, concurrency: int = 1) -> BatchHandler:
    """A batch handler that runs a per-record handler on each record, `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def handle_one(delivery: Delivery) -> Outcome:
        async with limit:
            tokens = bind_asset(delivery.asset_id)
            try:
                with trace.use_span(delivery.span, end_on_exit=False):
                    return await handler(delivery)
            except Exception as exc:
                return exc
            finally:
                unbind(tokens)

    async def handle_batch(batch: Sequence[Delivery]) -> Sequence[Outcome]:
        return await asyncio.gather(*(handle_one(delivery) for delivery in batch))

    return handle_batch


@dataclass(frozen=True)
class ConsumerConfig:
    """What a service consumes and how it buffers, batches and retries."""

    group_id: str
    # Topic name to priority (lower is served first).
    topics: Mapping[str, int]
    batch: BatchPolicy = BatchPolicy(max_items=16)
    # Records buffered per priority before its partitions are paused.
    buffer_per_priority: int = 1000
    # Attempts for errors of unknown kind; transient errors are retried until they clear.
    max_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    # Static membership: a restarted instance gets its partitions back without a rebalance.
    instance_id: str | None = None
    batch_key: Callable[[Delivery], Hashable] = field(default=lambda delivery: None)
    cost: Callable[[Delivery], float] = field(default=lambda delivery: 1.0)


class _Abandoned(Exception):
    """Shutting down while a batch still failed: leave it uncommitted for redelivery."""


def _is_retriable(error: BaseException, attempts: int, max_attempts: int) -> bool:
    if isinstance(error, AtelierError):
        return error.retriable
    return attempts < max_attempts


def _error_type(error: BaseException) -> str:
    return error.code if isinstance(error, AtelierError) else type(error).__name__


def dead_letter(delivery: Delivery, error: BaseException, service: str, topic: str) -> Outgoing:
    """The dead-letter record for a delivery that failed permanently."""
    header = getattr(delivery.event, "asset", None)
    record = delivery.record
    asset_id = getattr(error, "asset_id", "") or delivery.asset_id
    tier = cast(Tier, header.tier if header is not None else getattr(delivery.event, "tier", 0))
    event = DeadLettered(
        asset_id=asset_id,
        brand=getattr(error, "brand", "") or delivery.brand,
        tier=tier,
        service=service,
        original_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        original_key=record.key or b"",
        original_value=record.value or b"",
        error_type=_error_type(error),
        error_message=str(error) or repr(error),
        attempts=max(delivery.attempts, 1),
        traceparent=traceparent_of(record.headers),
        failed_at=now_timestamp(),
    )
    return Outgoing(topic, asset_id or record.topic, event)


class ConsumerRuntime:
    """Runs a service's handler over its topics until stopped."""

    def __init__(
        self,
        service: str,
        settings: AtelierSettings,
        config: ConsumerConfig,
        handler: BatchHandler,
        producer: EventProducer,
        on_failure: Callable[[BaseException], None] = lambda error: None,
    ) -> None:
        self.service = service
        self._on_failure = on_failure
        self._settings = settings
        self._config = config
        self._handler = handler
        self._producer = producer
        self._topics = settings.topics
        self._dead_letter_topic = self._topics.name(DEAD_LETTER)
        self._queue: FairQueue[Delivery] = FairQueue()
        self._offsets = OffsetTracker()
        self._handling = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self.batches_handled = 0
        # A fetch or work loop that died of a bug: the service is not ready and should be restarted.
        self.failure: BaseException | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The underlying consumer; raises before start()."""
        if self._consumer is None:
            raise RuntimeError(f"{self.service}: ConsumerRuntime used before start()")
        return self._consumer

    async def start(self) -> None:
        """Join the group (retrying until the brokers answer) and start fetching and handling."""
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=self._config.group_id,
                group_instance_id=self._config.instance_id,
                client_id=f"{self.service}-{self._config.group_id}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self._settings.kafka_session_timeout_ms,
                heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=100,
            )
            try:
                await consumer.start()
            except KafkaError as exc:
                log.warning("kafka unavailable, retrying", error=repr(exc), service=self.service)
                await asyncio.sleep(1.0)
                continue
            consumer.subscribe(list(self._config.topics), listener=_Rebalance(self))
            self._consumer = consumer
            break
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name=f"{self.service}-fetch"),
            asyncio.create_task(self._work_loop(), name=f"{self.service}-work"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: "asyncio.Task[None]") -> None:
        if task.cancelled():
            return
        failure = task.exception()
        if failure is None:
            return
        self.failure = failure
        log.error(
            "consumer loop died; stopping the service",
            task=task.get_name(),
            error=repr(self.failure),
            exc_info=self.failure,
            service=self.service,
        )
        self._on_failure(failure)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in flight (bounded), commit, and leave the group."""
        self._stopping.set()
        if self._tasks:
            fetch, work = self._tasks
            fetch.cancel()
            if not self._handling.locked():
                work.cancel()
            try:
                await asyncio.wait_for(asyncio.gather(work, return_exceptions=True), timeout_s)
            except TimeoutError:
                work.cancel()
            await asyncio.gather(fetch, work, return_exceptions=True)
        for delivery in self._queue.drain():
            metrics.BUFFERED.labels(self.service, delivery.record.topic).dec()
            delivery.span.end()
        if self._consumer is not None:
            await self._commit()
            try:
                await self._consumer.stop()
            except KafkaError as exc:
                # Leaving the group failed (a broker is down): the group will expire this member.
                log.warning("leaving the group failed", error=repr(exc), service=self.service)
            except asyncio.CancelledError:
                # After a broker outage aiokafka's fetcher can let the cancellation of its own fetch
                # task escape from stop(); re-raise only if this task is the one being cancelled.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                log.warning("consumer stop interrupted by its fetcher; left without it", service=self.service)
            self._consumer = None

    @property
    def buffered(self) -> int:
        """Records fetched and not yet handled."""
        return len(self._queue)

    @property
    def paused_partitions(self) -> int:
        """Partitions paused for backpressure."""
        return len(self._consumer.paused()) if self._consumer is not None else 0

    @property
    def ready(self) -> bool:
        """Joined the group and fetching."""
        return self._consumer is not None and not self._stopping.is_set() and self.failure is None

    # Fetching

    async def _fetch_loop(self) -> None:
        while not self._stopping.is_set():
            room = sum(
                max(self._config.buffer_per_priority - self._queue.count(priority), 0)
                for priority in set(self._config.topics.values())
            )
            try:
                records = await self.consumer.getmany(timeout_ms=200, max_records=max(room, 1))
            except KafkaError as exc:
                log.warning("fetch failed, retrying", error=repr(exc), service=self.service)
                await asyncio.sleep(0.5)
                continue
            assigned = self.consumer.assignment()
            for partition, batch in records.items():
                if partition not in assigned:
                    continue
                for record in batch:
                    self._offsets.add(partition, record.offset)
                    self._queue.put(self._delivery(record))
            self._apply_backpressure()

    def _delivery(self, record: ConsumerRecord[bytes, bytes]) -> Delivery:
        spec = self._topics.spec(record.topic)
        now_ns = time.time_ns()
        produced_ns = min(record.timestamp * 1_000_000, now_ns) if record.timestamp else now_ns
        span = tracer().start_span(
            f"process {record.topic}",
            context=context_from(record.headers),
            kind=SpanKind.CONSUMER,
            start_time=produced_ns,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation": "process",
                "messaging.destination.name": record.topic,
                "messaging.kafka.consumer.group": self._config.group_id,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.kafka.message.key": (record.key or b"").decode(errors="replace"),
            },
        )
        delivery = Delivery(record=record, event=None, span=span, priority=self._config.topics[record.topic])
        delivery.meta["produced_ns"] = produced_ns
        try:
            delivery.event = decode(spec, record.value)
        except AtelierError as exc:
            delivery.error = exc
        if delivery.asset_id:
            span.set_attribute("atelier.asset_id", delivery.asset_id)
        metrics.BUFFERED.labels(self.service, record.topic).inc()
        return delivery

    def _apply_backpressure(self) -> None:
        consumer = self.consumer
        assigned = consumer.assignment()
        paused = consumer.paused()
        capacity = self._config.buffer_per_priority
        for priority in set(self._config.topics.values()):
            partitions = [p for p in assigned if self._config.topics.get(p.topic) == priority]
            buffered = self._queue.count(priority)
            if buffered >= capacity:
                to_pause = [p for p in partitions if p not in paused]
                if to_pause:
                    consumer.pause(*to_pause)
                    log.info("buffer full, pausing", priority=priority, buffered=buffered, service=self.service)
            elif buffered <= capacity // 2:
                to_resume = [p for p in partitions if p in paused]
                if to_resume:
                    consumer.resume(*to_resume)
        metrics.PAUSED_PARTITIONS.labels(self.service).set(len(consumer.paused()))

    # Handling

    async def _work_loop(self) -> None:
        while not self._stopping.is_set():
            batch = await self._queue.take(self._config.batch, self._config.batch_key, self._config.cost)
            async with self._handling:
                if self._consumer is not None:
                    self._apply_backpressure()
                try:
                    await self._handle(batch)
                except _Abandoned:
                    for delivery in batch:
                        delivery.span.set_status(Status(StatusCode.ERROR, "abandoned at shutdown"))
                        delivery.span.end()
                    return

    async def _handle(self, batch: list[Delivery]) -> None:
        started = time.monotonic()
        handling_ns = time.time_ns()
        for delivery in batch:
            topic = delivery.record.topic
            metrics.BUFFERED.labels(self.service, topic).dec()
            waited_s = max(handling_ns / 1e9 - delivery.record.timestamp / 1000, 0.0)
            metrics.QUEUE_WAIT_SECONDS.labels(self.service, topic).observe(waited_s)
            tracer().start_span("queue wait", context=delivery.context, start_time=delivery.meta["produced_ns"]).end(
                end_time=handling_ns
            )
            delivery.meta["queue_wait_ms"] = waited_s * 1000
        metrics.BATCH_SIZE.labels(self.service).observe(len(batch))

        outcomes = await self._attempt(batch)
        sends: list[tuple[Outgoing, Any]] = []
        for delivery in batch:
            outcome = outcomes[delivery]
            if isinstance(outcome, BaseException):
                sends.append((dead_letter(delivery, outcome, self.service, self._dead_letter_topic), delivery.context))
            else:
                sends.extend((outgoing, delivery.context) for outgoing in outcome)
        await self._send(sends)

        for delivery in batch:
            outcome = outcomes[delivery]
            topic = delivery.record.topic
            if isinstance(outcome, BaseException):
                error_type = _error_type(outcome)
                metrics.DEAD_LETTERS.labels(self.service, error_type).inc()
                metrics.MESSAGES.labels(self.service, topic, "dead_lettered").inc()
                delivery.span.record_exception(outcome)
                delivery.span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {error_type}"))
                log.warning(
                    "dead-lettered",
                    asset_id=delivery.asset_id,
                    topic=topic,
                    partition=delivery.record.partition,
                    offset=delivery.record.offset,
                    error_type=error_type,
                    error=str(outcome),
                    attempts=delivery.attempts,
                    service=self.service,
                )
            else:
                metrics.MESSAGES.labels(self.service, topic, "ok").inc()
            delivery.span.end()
            self._offsets.done(delivery.topic_partition, delivery.record.offset)
        await self._commit()
        self.batches_handled += 1
        metrics.HANDLE_SECONDS.labels(self.service).observe(time.monotonic() - started)

    async def _attempt(self, batch: list[Delivery]) -> dict[Delivery, Outcome]:
        results: dict[Delivery, Outcome] = {d: d.error for d in batch if d.error is not None}
        pending = [d for d in batch if d.error is None]
        attempt = 0
        while pending:
            attempt += 1
            try:
                outcomes = await self._handler(pending)
            except Exception as exc:
                outcomes = [exc] * len(pending)
            retry: list[Delivery] = []
            for delivery, outcome in zip(pending, outcomes, strict=True):
                delivery.attempts += 1
                if isinstance(outcome, BaseException) and _is_retriable(
                    outcome, delivery.attempts, self._config.max_attempts
                ):
                    metrics.RETRIES.labels(self.service, _error_type(outcome)).inc()
                    log.warning(
                        "handling failed, will retry",
                        asset_id=delivery.asset_id,
                        error_type=_error_type(outcome),
                        error=str(outcome),
                        attempts=delivery.attempts,
                        service=self.service,
                    )
                    retry.append(delivery)
                else:
                    results[delivery] = outcome
            pending = retry
            if pending:
                await self._backoff(attempt)
        return results

    async def _send(self, sends: list[tuple[Outgoing, Any]]) -> None:
        attempt = 0
        while True:
            try:
                await self._producer.send_all(sends)
                return
            except TransientError as exc:
                attempt += 1
                metrics.RETRIES.labels(self.service, exc.code).inc()
                log.warning("produce failed, will retry", error=str(exc), attempt=attempt, service=self.service)
                await self._backoff(attempt)

    async def _backoff(self, attempt: int) -> None:
        delay = min(self._config.backoff_initial_s * 2 ** (attempt - 1), self._config.backoff_max_s)
        delay *= random.uniform(0.8, 1.2)
        try:
            await asyncio.wait_for(self._stopping.wait(), delay)
        except TimeoutError:
            return
        raise _Abandoned()

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        if self._consumer is None:
            return
        owned = self._consumer.assignment() if partitions is None else partitions
        offsets = {p: o for p, o in self._offsets.committable().items() if p in owned}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
            self._offsets.committed(offsets)
        except KafkaError as exc:
            # The group moved on; the new owner will redeliver these records (at-least-once).
            log.warning("commit failed", error=repr(exc), service=self.service)

    # Rebalances

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish the batch in flight, commit what is done, drop buffered records of revoked partitions."""
        async with self._handling:
            await self._commit(revoked)
            for delivery in self._queue.discard(revoked):
                metrics.BUFFERED.labels(self.service, delivery.record.topic).dec()
                delivery.span.end()
            self._offsets.forget(revoked)
        if revoked:
            log.info("partitions revoked", count=len(revoked), service=self.service)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Log the new assignment; positions come from the committed offsets."""
        log.info("partitions assigned", count=len(assigned), service=self.service)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: ConsumerRuntime) -> None:
        self._runtime = runtime

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runtime.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._runtime.on_assigned(set(assigned))
