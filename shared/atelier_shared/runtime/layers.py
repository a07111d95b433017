"""The layers around a subscription's handlers, each read and changed alone (middlewares).

A layer gets a batch of deliveries and the next layer to call, and returns one outcome per delivery:
the events it published, or the error it failed with. Outermost first, every subscription runs:

    Tracing      a span per record (child of its producer's), with a queue-wait child span
    Logging      the final outcome of each record
    Metrics      counts, queue wait, batch size, handling time
    DeadLetter   a permanent failure becomes a dead-letter record (original, error, where, attempts)
    Retry        transient errors retried until they clear, unknown ones up to max_attempts
    Publish      the handler's events produced, acknowledged by all in-sync replicas

The core loop (consumer.py) commits a record's offset only after all of this returned for it.
"""

import asyncio
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol, cast

from opentelemetry.trace import SpanKind, Status, StatusCode

from atelier_shared import metrics, topics
from atelier_shared.errors import AtelierError, BrokerUnavailable, PublishRefused
from atelier_shared.events import DeadLettered, Tier, now_timestamp
from atelier_shared.logging import get_logger
from atelier_shared.runtime.delivery import Delivery, Outgoing
from atelier_shared.runtime.producer import EventProducer
from atelier_shared.runtime.retrying import Abandoned, Shutdown, hold, retrying, warn
from atelier_shared.runtime.subscription import Options, Outcome, failed
from atelier_shared.tracing import context_from, traceparent_of, tracer

log = get_logger(__name__)

Handle = Callable[[Sequence[Delivery]], Awaitable[list[Outcome]]]


class Layer(Protocol):
    """One concern around handling a batch."""

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]: ...


def stack(layers: Sequence[Layer], handle: Handle) -> Handle:
    """`handle` wrapped in `layers`, the first outermost."""
    for layer in reversed(layers):
        handle = functools.partial(layer, call_next=handle)
    return handle


def error_type(error: BaseException) -> str:
    """The stable name of an error in dead letters, logs and metric labels."""
    return error.code if isinstance(error, AtelierError) else type(error).__name__


class Tracing:
    """A consumer span per record from its produce time, child of the span that produced it."""

    def __init__(self, group: str) -> None:
        self._group = group

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        for delivery in batch:
            record = delivery.record
            delivery.span = tracer().start_span(
                f"process {record.topic}",
                context=context_from(record.headers),
                kind=SpanKind.CONSUMER,
                start_time=delivery.produced_ns,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.kafka.consumer.group": self._group,
                    "messaging.kafka.destination.partition": record.partition,
                    "messaging.kafka.message.offset": record.offset,
                    "messaging.kafka.message.key": (record.key or b"").decode(errors="replace"),
                    "atelier.asset_id": delivery.asset_id,
                },
            )
            queue_wait = tracer().start_span("queue wait", context=delivery.context, start_time=delivery.produced_ns)
            queue_wait.end(end_time=delivery.handling_ns)
        try:
            outcomes = await call_next(batch)
        except BaseException as exc:
            for delivery in batch:
                delivery.span.set_status(Status(StatusCode.ERROR, f"abandoned: {exc!r}"))
                delivery.span.end()
            raise
        for delivery, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Abandoned):
                delivery.span.set_status(Status(StatusCode.ERROR, "abandoned: handled again"))
            elif isinstance(outcome, BaseException):
                delivery.span.record_exception(outcome)
                delivery.span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {error_type(outcome)}"))
            delivery.span.end()
        return outcomes


class Logging:
    """Logs each record's final outcome: a dead letter loudly, success at debug level."""

    def __init__(self, service: str) -> None:
        self._service = service

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        outcomes = await call_next(batch)
        for delivery, outcome in zip(batch, outcomes, strict=True):
            where = {"topic": delivery.record.topic, "partition": delivery.record.partition}
            if failed(outcome):
                log.warning(
                    "dead-lettered",
                    asset_id=delivery.asset_id,
                    offset=delivery.record.offset,
                    error_type=error_type(outcome),
                    error=str(outcome),
                    attempts=delivery.attempts,
                    service=self._service,
                    **where,
                )
            elif isinstance(outcome, BaseException):  # Abandoned.
                log.info("abandoned, to be handled again", asset_id=delivery.asset_id, service=self._service, **where)
            else:
                log.debug("handled", asset_id=delivery.asset_id, published=len(outcome), service=self._service, **where)
        return outcomes


class Metrics:
    """Prometheus counts of outcomes, queue wait, batch size and handling time."""

    def __init__(self, service: str) -> None:
        self._service = service

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        started = time.monotonic()
        metrics.BATCH_SIZE.labels(self._service).observe(len(batch))
        for delivery in batch:
            metrics.QUEUE_WAIT_SECONDS.labels(self._service, delivery.record.topic).observe(
                delivery.queue_wait_ms / 1000
            )
        outcomes = await call_next(batch)
        for delivery, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Abandoned):
                continue  # Counted when it is handled again.
            if failed(outcome):
                metrics.DEAD_LETTERS.labels(self._service, error_type(outcome)).inc()
            result = "dead_lettered" if failed(outcome) else "ok"
            metrics.MESSAGES.labels(self._service, delivery.record.topic, result).inc()
        metrics.HANDLE_SECONDS.labels(self._service).observe(time.monotonic() - started)
        return outcomes


class Sender:
    """Produces a record's outputs, retrying while the broker is unavailable, until shutdown."""

    def __init__(self, service: str, producer: EventProducer, shutdown: Shutdown) -> None:
        self._service = service
        self._producer = producer
        self._shutdown = shutdown

    def _on_retry(self, error: BaseException, attempt: int) -> None:
        metrics.RETRIES.labels(self._service, error_type(error)).inc()
        warn("producing", service=self._service)(error, attempt)

    async def send(self, outgoing: Sequence[Outgoing]) -> None:
        """Produce and wait for acknowledgement, sending again only what was not acknowledged;
        PublishRefused (naming those) when Kafka refuses records for good."""
        should_retry = lambda error: isinstance(error, BrokerUnavailable)  # noqa: E731
        pending = outgoing
        async for attempt in retrying(should_retry, self._shutdown.sleep, on_retry=self._on_retry):
            with attempt:
                try:
                    await self._producer.send(pending)
                except BrokerUnavailable as exc:
                    pending = exc.unacknowledged or pending  # None named: all of them.
                    raise


def in_trace_of(delivery: Delivery, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
    """Records whose headers carry the delivery's processing span as their parent."""
    return [replace(item, context=delivery.context) for item in outgoing]


# A dead letter keeps the failed record's value up to this size, and the error's message up to this
# length: with the rest of the letter well inside Kafka's default record limit of 1 MiB. A letter
# Kafka refused failed its whole batch, the consumer stopped, and after a restart fetched the same
# record again.
MAX_ORIGINAL_BYTES = 512 * 1024
MAX_ERROR_CHARS = 4096
# Ids and keys come from outside too (an intake event's asset_id, an inbox record's key): bounded as well.
MAX_ID_CHARS = 256
MAX_KEY_BYTES = 4096


def dead_letter(delivery: Delivery, error: BaseException, service: str) -> Outgoing:
    """The dead-letter record of a delivery that failed for good: what, where, why, how often."""
    header = getattr(delivery.event, "asset", None)
    record = delivery.record
    original, key = record.value or b"", record.key or b""
    kept = len(original) <= MAX_ORIGINAL_BYTES and len(key) <= MAX_KEY_BYTES  # Else not replayable.
    asset_id = (getattr(error, "asset_id", "") or delivery.asset_id)[:MAX_ID_CHARS]
    tier = cast(Tier, header.tier if header is not None else getattr(delivery.event, "tier", 0))
    event = DeadLettered(
        asset_id=asset_id,
        brand=(getattr(error, "brand", "") or delivery.brand)[:MAX_ID_CHARS],
        tier=tier,
        service=service,
        original_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        original_key=key if kept else b"",
        original_value=original if kept else b"",
        original_omitted=not kept,
        original_size=len(original),
        original_sha256=hashlib.sha256(original).hexdigest(),
        error_type=error_type(error),
        error_message=(str(error) or repr(error))[:MAX_ERROR_CHARS],
        attempts=max(delivery.attempts, 1),
        traceparent=traceparent_of(record.headers),
        failed_at=now_timestamp(),
    )
    return Outgoing(topics.DEAD_LETTER, event, key=asset_id or record.topic, context=delivery.context)


class DeadLetter:
    """Publishes a dead-letter record for every record that failed for good (the error stays its outcome)."""

    def __init__(self, service: str, sender: Sender) -> None:
        self._service = service
        self._sender = sender

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        outcomes = await call_next(batch)
        letters = [
            dead_letter(delivery, outcome, self._service)
            for delivery, outcome in zip(batch, outcomes, strict=True)
            if failed(outcome)
        ]
        if letters:
            try:
                await self._sender.send(letters)
            except PublishRefused as exc:  # A topic with a lower record limit than Kafka's default.
                log.error(
                    "Kafka refused dead letters; sending each again, refused ones without their records",
                    error=str(exc)[:500],
                )
                for letter in exc.unacknowledged or letters:
                    try:
                        await self._sender.send([letter])
                    except PublishRefused:
                        await self._sender.send([_without_record(letter)])
        return outcomes


def _without_record(letter: Outgoing) -> Outgoing:
    event = DeadLettered()
    event.CopyFrom(letter.event)
    event.ClearField("original_key")
    event.ClearField("original_value")
    event.original_omitted = True
    return replace(letter, event=event)


class _Pending(Exception):
    """Some records of the batch failed in a way worth another attempt."""


class Retry:
    """Retries records whose error says it may clear (transient), or is of unknown kind (up to a limit)."""

    def __init__(self, service: str, max_attempts: int, initial_s: float, max_s: float) -> None:
        self._service = service
        self._max_attempts = max_attempts
        self._initial_s = initial_s
        self._max_s = max_s

    def _retriable(self, error: BaseException, attempts: int) -> bool:
        if isinstance(error, AtelierError):
            return error.retriable
        return attempts < self._max_attempts

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        settled: dict[Delivery, Outcome] = {}
        pending = list(batch)
        should_retry = lambda error: isinstance(error, _Pending)  # noqa: E731
        try:
            # The back-off is a hold: a stop or a rebalance does not wait for a dependency to come back.
            async for attempt in retrying(should_retry, hold, self._initial_s, self._max_s):
                with attempt:
                    pending = self._settle(pending, await call_next(pending), settled)
                    if pending:
                        raise _Pending()
        except Abandoned:
            settled.update((delivery, Abandoned()) for delivery in pending)  # The others' outputs are out.
        return [settled[delivery] for delivery in batch]

    def _settle(
        self, pending: list[Delivery], outcomes: list[Outcome], settled: dict[Delivery, Outcome]
    ) -> list[Delivery]:
        """Record final outcomes; the deliveries to try again."""
        again = []
        for delivery, outcome in zip(pending, outcomes, strict=True):
            delivery.attempts += 1
            if failed(outcome) and self._retriable(outcome, delivery.attempts):
                metrics.RETRIES.labels(self._service, error_type(outcome)).inc()
                log.warning(
                    "handling failed, will retry",
                    asset_id=delivery.asset_id,
                    error_type=error_type(outcome),
                    error=str(outcome),
                    attempts=delivery.attempts,
                    service=self._service,
                )
                again.append(delivery)
            else:
                settled[delivery] = outcome
        return again


class Publish:
    """Produces what the handlers returned, a batch at a time; outputs Kafka refuses for good fail with PublishRefused.

    The common case is one send for the whole batch. Only when Kafka refuses something are the
    records it did not acknowledge sent again one delivery at a time, to find whose outputs it
    refuses (a broker refuses a partition's whole batch for one record over a topic's limit).
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    async def __call__(self, batch: Sequence[Delivery], call_next: Handle) -> list[Outcome]:
        outcomes = await call_next(batch)
        published = [
            (delivery, in_trace_of(delivery, outcome))
            for delivery, outcome in zip(batch, outcomes, strict=True)
            if not isinstance(outcome, BaseException) and outcome
        ]
        sent = [item for _, outgoing in published for item in outgoing]
        try:
            await self._sender.send(sent)
        except PublishRefused as exc:
            unacknowledged = {id(item) for item in exc.unacknowledged or sent}
            left = [
                (delivery, [item for item in outgoing if id(item) in unacknowledged])
                for delivery, outgoing in published
            ]
            refused = await asyncio.gather(*(self._refused(outgoing) for _, outgoing in left))
            errors = {delivery: error for (delivery, _), error in zip(left, refused, strict=True) if error}
            return [errors.get(delivery, outcome) for delivery, outcome in zip(batch, outcomes, strict=True)]
        return outcomes

    async def _refused(self, outgoing: Sequence[Outgoing]) -> PublishRefused | None:
        if not outgoing:
            return None
        try:
            await self._sender.send(outgoing)
        except PublishRefused as exc:
            return exc
        return None


def default_layers(
    service: str, group: str, producer: EventProducer, shutdown: Shutdown, options: Options
) -> list[Layer]:
    """The layers every subscription runs, outermost first."""
    sender = Sender(service, producer, shutdown)
    return [
        Tracing(group),
        Logging(service),
        Metrics(service),
        DeadLetter(service, sender),
        Retry(service, options.max_attempts, options.backoff_initial_s, options.backoff_max_s),
        Publish(sender),
    ]
