from collections.abc import Sequence

from aiokafka.structs import ConsumerRecord

from atelier_shared import InvalidImage, Outgoing, PublishRefused, topics
from atelier_shared.runtime.delivery import Delivery
from atelier_shared.runtime.layers import DeadLetter, Sender
from atelier_shared.runtime.retrying import Shutdown
from atelier_shared.runtime.subscription import Outcome


class RefusingLargeRecords:
    """A producer standing in for a dead-letter topic whose record limit is below Kafka's default."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.acknowledged: list[Outgoing] = []

    async def send(self, outgoing: Sequence[Outgoing]) -> None:
        refused = [item for item in outgoing if item.event.ByteSize() > self.limit]
        self.acknowledged += [item for item in outgoing if item not in refused]
        if refused:
            error = PublishRefused("over the topic's limit")
            error.unacknowledged = refused
            raise error


def delivery(offset: int, value: bytes) -> Delivery:
    record = ConsumerRecord("atelier.uploaded", 0, offset, 0, 0, b"key", value, None, 0, len(value), [])  # type: ignore[call-arg]
    return Delivery(record=record, spec=topics.UPLOADED, priority=0)


async def test_a_refused_letter_is_sent_again_alone_and_the_others_once() -> None:
    """Regression: when Kafka refused one dead letter of a batch, every letter of the batch was sent
    again, so those it had taken were on the topic twice. Only the refused one is sent again: with
    its record, then without."""
    producer = RefusingLargeRecords(limit=10_000)
    layer = DeadLetter("test", Sender("test", producer, Shutdown()))  # type: ignore[arg-type]
    batch = [delivery(1, b"small"), delivery(2, b"x" * 20_000)]

    async def fail(deliveries: Sequence[Delivery]) -> list[Outcome]:
        return [InvalidImage("unreadable") for _ in deliveries]

    await layer(batch, fail)
    letters = [(item.event.offset, item.event.original_omitted) for item in producer.acknowledged]
    assert letters == [(1, False), (2, True)]
