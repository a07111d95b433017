"""The idempotent producer (acks=all) every service shares; it carries the trace context in headers."""

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from atelier_shared.errors import BrokerUnavailable, PublishRefused
from atelier_shared.runtime.delivery import Outgoing
from atelier_shared.runtime.retrying import kafka_retriable, retrying, warn
from atelier_shared.topics import Topics
from atelier_shared.tracing import headers_for


def _event_type(item: Outgoing) -> bytes:
    return str(item.event.DESCRIPTOR.full_name).encode()


class EventProducer:
    """Produces events and waits until all in-sync replicas have them."""

    def __init__(self, connection: str | dict[str, Any], client_id: str, topics: Topics, linger_ms: int = 0) -> None:
        # Bootstrap servers, or every connection option (AtelierSettings.kafka_options()).
        self._connection = {"bootstrap_servers": connection} if isinstance(connection, str) else connection
        self._linger_ms = linger_ms
        self._client_id = client_id
        self._topics = topics
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect, retrying while the brokers cannot be reached (services may start before Kafka)."""
        async for attempt in retrying(kafka_retriable, max_s=5.0, on_retry=warn("connecting the producer")):
            with attempt:
                producer = AIOKafkaProducer(
                    **self._connection,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self._linger_ms,
                    request_timeout_ms=30_000,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    def _check(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("EventProducer used before start(): call `await producer.start()` first")
        return self._producer

    async def send(self, outgoing: Sequence[Outgoing]) -> None:
        """Produce events in order; return once every one is acknowledged.

        Raises BrokerUnavailable (transient) when Kafka may yet take them, PublishRefused (permanent)
        when it refused them for good, e.g. a record over the size limit; either names the records
        not acknowledged (`unacknowledged`), so that no caller sends the others twice.
        """
        producer = self._check()
        sent: list[tuple[Outgoing, asyncio.Future[Any]]] = []
        errors: list[tuple[Outgoing, KafkaError]] = []
        for index, item in enumerate(outgoing):
            try:
                sent.append((item, await producer.send(**self._record(item))))
            except KafkaError as exc:
                errors.append((item, exc))
                if kafka_retriable(exc):  # No metadata, or no room, within the timeout: the rest would wait as long.
                    errors += [(unsent, exc) for unsent in outgoing[index + 1 :]]
                    break
                # Refused for good (over the client's size limit): the others still go.
        acknowledged = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        for (item, _), outcome in zip(sent, acknowledged, strict=True):
            if isinstance(outcome, KafkaError):
                errors.append((item, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
        if not errors:
            return
        error: BrokerUnavailable | PublishRefused
        first = errors[0][1]
        if any(kafka_retriable(exc) for _, exc in errors):
            error = BrokerUnavailable(f"Kafka did not acknowledge {len(errors)} records: {first!r}")
        else:
            error = PublishRefused(f"Kafka refused {len(errors)} records: {first!r}")
        unacknowledged = {id(item) for item, _ in errors}
        error.unacknowledged = [item for item in outgoing if id(item) in unacknowledged]
        raise error from first

    def _record(self, item: Outgoing) -> dict[str, Any]:
        """An event as `AIOKafkaProducer.send`'s arguments."""
        return {
            "topic": self._topics.name(item.topic),
            "value": item.event.SerializeToString(),
            "key": item.record_key.encode(),
            "headers": [*headers_for(item.context), ("atelier-event-type", _event_type(item))],
        }

    async def send_raw(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Produce a record that is not an Atelier event (the drop-trigger simulation, tests)."""
        try:
            await self._check().send_and_wait(topic, value=value, key=key, headers=headers)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge the record: {exc!r}") from exc
