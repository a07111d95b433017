"""Kafka plumbing every service shares: the idempotent producer, decoding, and what handlers see."""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from google.protobuf.message import DecodeError, Message
from opentelemetry import trace
from opentelemetry.context import Context

from atelier_shared.errors import AtelierError, BrokerUnavailable, InvalidEvent
from atelier_shared.logging import get_logger
from atelier_shared.topics import TopicSpec
from atelier_shared.tracing import headers_for

log = get_logger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """An event to produce: its topic, its key (the asset id) and the message."""

    topic: str
    key: str
    event: Message


def decode(spec: TopicSpec, value: bytes | None) -> Any:
    """A record value as its topic's message type (or JSON for MinIO's notifications)."""
    if value is None:
        raise InvalidEvent(f"empty record on topic {spec.suffix!r}")
    if spec.message is None:
        try:
            return json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent(f"not a JSON bucket notification: {exc}") from exc
    try:
        return spec.message.FromString(value)
    except DecodeError as exc:
        raise InvalidEvent(f"not a {spec.message.DESCRIPTOR.full_name}: {exc}") from exc


@dataclass(eq=False)
class Delivery:
    """One consumed record: decoded event (or why it could not be), trace span, retry count."""

    record: ConsumerRecord[bytes, bytes]
    event: Any
    span: trace.Span
    priority: int = 0
    error: AtelierError | None = None
    attempts: int = 0
    # Batch key and cost for the scheduler (set by the service, e.g. the stylizer's model).
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)

    @property
    def asset_id(self) -> str:
        """The asset id from the event header, else the record key."""
        header = getattr(self.event, "asset", None)
        if header is not None and header.asset_id:
            return str(header.asset_id)
        direct = getattr(self.event, "asset_id", "")
        if direct:
            return str(direct)
        return (self.record.key or b"").decode(errors="replace")

    @property
    def brand(self) -> str:
        header = getattr(self.event, "asset", None)
        return str(getattr(header, "brand", "") or getattr(self.event, "brand", "") or "")

    @property
    def fairness_key(self) -> str:
        return self.brand

    @property
    def context(self) -> Context:
        """Trace context whose parent is this record's processing span."""
        return trace.set_span_in_context(self.span)


class EventProducer:
    """Idempotent producer (acks=all) that puts the trace context into record headers."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        """Connect to the brokers, retrying until they answer (services may start before Kafka)."""
        delay = 0.5
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                log.warning("kafka unavailable, retrying", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            return

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def _check(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("EventProducer used before start(): call `await producer.start()` first")
        return self._producer

    async def send(self, outgoing: Outgoing, context: Context | None = None) -> None:
        """Produce one event and wait for all in-sync replicas to acknowledge it."""
        await self.send_all([(outgoing, context)])

    async def send_all(self, items: Sequence[tuple[Outgoing, Context | None]]) -> None:
        """Produce events concurrently; returns once every one is acknowledged."""
        producer = self._check()
        try:
            futures = [
                await producer.send(
                    outgoing.topic,
                    value=outgoing.event.SerializeToString(),
                    key=outgoing.key.encode(),
                    headers=[
                        *headers_for(context),
                        ("atelier-event-type", outgoing.event.DESCRIPTOR.full_name.encode()),
                    ],
                )
                for outgoing, context in items
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge the records: {exc!r}") from exc

    async def send_raw(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Produce a record that is not an Atelier event (tests, drop-trigger simulation)."""
        producer = self._check()
        try:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge the record: {exc!r}") from exc
