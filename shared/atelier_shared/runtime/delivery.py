"""What flows through the runtime: a consumed record (Delivery) and an event to produce (Outgoing)."""

import time
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.context import Context

from atelier_shared.errors import AtelierError
from atelier_shared.topics import TopicSpec


def asset_id_of(event: Any) -> str:
    """The asset id an event is about: its header's, or its own field's; "" for neither."""
    header = getattr(event, "asset", None)
    if header is not None and header.asset_id:
        return str(header.asset_id)
    return str(getattr(event, "asset_id", "") or "")


@dataclass(frozen=True)
class Outgoing:
    """An event to produce: its topic, the message, its key (the asset id unless given), and the trace
    context its headers carry (the current one unless given)."""

    topic: TopicSpec[Any]
    event: Message
    key: str = ""
    context: Context | None = None

    @property
    def record_key(self) -> str:
        return self.key or asset_id_of(self.event)


@dataclass(eq=False)
class Delivery:
    """One consumed record: its topic, decoded event (or why it could not be), trace span, attempts."""

    record: ConsumerRecord[bytes, bytes]
    spec: TopicSpec[Any]
    priority: int
    event: Any = None
    error: AtelierError | None = None
    # The record's processing span (set by the tracing layer); outputs' traceparent is its child.
    span: trace.Span = trace.INVALID_SPAN
    attempts: int = 0
    # When the record was produced, and when its handling began (taken from the buffer).
    produced_ns: int = 0
    handling_ns: int = 0
    # The partition's ownership epoch when fetched (see OffsetTracker.epoch).
    epoch: int = 0

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes], spec: TopicSpec[Any], priority: int, epoch: int) -> "Delivery":
        """A fetched record, decoded (a record that does not decode carries its InvalidEvent)."""
        now_ns = time.time_ns()
        produced_ns = min(record.timestamp * 1_000_000, now_ns) if record.timestamp else now_ns
        delivery = cls(record=record, spec=spec, priority=priority, produced_ns=produced_ns, epoch=epoch)
        try:
            delivery.event = spec.decode(record.value)
        except AtelierError as exc:
            delivery.error = exc
        return delivery

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)

    @property
    def asset_id(self) -> str:
        """The asset id from the event, else the record key."""
        return asset_id_of(self.event) or (self.record.key or b"").decode(errors="replace")

    @property
    def brand(self) -> str:
        header = getattr(self.event, "asset", None)
        return str(getattr(header, "brand", "") or getattr(self.event, "brand", "") or "")

    @property
    def fairness_key(self) -> str:
        return self.brand

    @property
    def queue_wait_ms(self) -> float:
        """From produce to the start of handling."""
        return max(self.handling_ns - self.produced_ns, 0) / 1e6

    @property
    def context(self) -> Context:
        """Trace context whose parent is this record's processing span."""
        return trace.set_span_in_context(self.span)
