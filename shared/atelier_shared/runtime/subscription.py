"""A subscription: one consumer group of a service, its topics by priority, their handlers, what it publishes.

Handlers are typed functions from one event to the next: a record handler takes the decoded event
and returns the event(s) to publish (or None); a batch handler takes a batch of deliveries and
returns one result per delivery (the stylizer's micro-batches). Returned events go to the topic the
subscription declares it publishes, keyed by their asset id; a handler that publishes to one of
several topics declares a Choice.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeGuard, TypeVar

from google.protobuf.message import Message
from opentelemetry import trace

from atelier_shared.logging import bind_asset, unbind
from atelier_shared.runtime.delivery import Delivery, Outgoing
from atelier_shared.runtime.retrying import Abandoned
from atelier_shared.runtime.scheduling import BatchPolicy
from atelier_shared.topics import TopicSpec

E = TypeVar("E")
Produced: TypeAlias = Message | Sequence[Message] | None
RecordHandler: TypeAlias = Callable[[E], Awaitable[Produced]]
BatchHandler: TypeAlias = Callable[[Sequence[Delivery]], Awaitable[Sequence[Produced | BaseException]]]
# What became of a delivery: the events it published, or the error it failed with (Abandoned: it is
# handled again, neither retried nor dead-lettered).
Outcome: TypeAlias = Sequence[Outgoing] | BaseException


def failed(outcome: Outcome) -> TypeGuard[BaseException]:
    """Whether a delivery failed (to be retried or dead-lettered): an error other than Abandoned."""
    return isinstance(outcome, BaseException) and not isinstance(outcome, Abandoned)


@dataclass(frozen=True)
class Choice(Generic[E]):
    """Several topics a handler publishes to; `choose` picks one for each event."""

    among: tuple[TopicSpec[E], ...]
    choose: Callable[[E], TopicSpec[E]]


Publishes: TypeAlias = TopicSpec[Any] | Choice[Any]


def published_topics(publishes: Publishes | None) -> tuple[TopicSpec[Any], ...]:
    """Every topic a declaration may publish to."""
    if publishes is None:
        return ()
    return publishes.among if isinstance(publishes, Choice) else (publishes,)


@dataclass(frozen=True)
class Options:
    """How a subscription buffers, batches and retries."""

    batch: BatchPolicy = BatchPolicy(max_items=16)
    # Records handled at once by a record handler.
    concurrency: int = 1
    # Batches handled at once: a GPU pool decodes and stores one batch while the device runs another.
    # They may finish out of order; offsets are committed in order all the same.
    in_flight: int = 1
    # Records buffered per priority before its partitions are paused.
    buffer: int = 1000
    # Attempts for errors of unknown kind; transient errors are retried until they clear.
    max_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    # Batch key and cost of a decoded event (e.g. the stylizer's style, and pixels against a budget).
    batch_key: Callable[[Any], Hashable] | None = None
    cost: Callable[[Any], float] | None = None


@dataclass
class Subscription:
    """One consumer group: its topics (lower priority number served first), handlers and publications."""

    service: str
    name: str
    publishes: Publishes | None
    options: Options
    priorities: dict[TopicSpec[Any], int] = field(default_factory=dict)
    record_handlers: dict[TopicSpec[Any], RecordHandler[Any]] = field(default_factory=dict)
    batch_handler: BatchHandler | None = None
    # Flow control: while paused the group keeps its partitions but fetches and handles nothing new.
    flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.flowing.set()

    def pause(self) -> None:
        """Stop taking new work (the consumer stays in its group, so rebalances are not held up)."""
        self.flowing.clear()

    def resume(self) -> None:
        """Take new work again."""
        self.flowing.set()

    @property
    def topics(self) -> list[TopicSpec[Any]]:
        return list(self.priorities)

    def batch_key(self, delivery: Delivery) -> Hashable:
        key = self.options.batch_key
        return None if key is None or delivery.error is not None else key(delivery.event)

    def cost(self, delivery: Delivery) -> float:
        cost = self.options.cost
        return 1.0 if cost is None or delivery.error is not None else cost(delivery.event)

    def outputs(self, produced: Produced) -> list[Outgoing]:
        """The records a handler's result becomes."""
        if produced is None:
            return []
        events = [produced] if isinstance(produced, Message) else list(produced)
        return [Outgoing(self._topic_for(event), event) for event in events]

    def _topic_for(self, event: Message) -> TopicSpec[Any]:
        if self.publishes is None:
            raise RuntimeError(f"{self.service}/{self.name} returned an event but declares no topic it publishes")
        topic = self.publishes.choose(event) if isinstance(self.publishes, Choice) else self.publishes
        if topic not in published_topics(self.publishes):
            raise RuntimeError(f"{self.service}/{self.name} chose topic {topic.suffix!r}, which it does not declare")
        return topic

    async def handle(self, batch: Sequence[Delivery]) -> list[Outcome]:
        """Run the handlers: one outcome per delivery (an undecodable record's is its InvalidEvent)."""
        if self.batch_handler is not None:
            return await self._handle_batch(batch)
        limit = asyncio.Semaphore(self.options.concurrency)
        # A record abandoned (the service stopping, a rebalance ending a hold) is Abandoned alone: the
        # records of the batch that finished keep their outcomes, and are not handled twice.
        return list(await asyncio.gather(*(self._handle_record(delivery, limit) for delivery in batch)))

    async def _handle_record(self, delivery: Delivery, limit: asyncio.Semaphore) -> Outcome:
        if delivery.error is not None:
            return delivery.error
        async with limit:
            tokens = bind_asset(delivery.asset_id)
            try:
                with trace.use_span(delivery.span, end_on_exit=False):
                    return self.outputs(await self.record_handlers[delivery.spec](delivery.event))
            except Exception as exc:  # Abandoned included.
                return exc
            finally:
                unbind(tokens)

    async def _handle_batch(self, batch: Sequence[Delivery]) -> list[Outcome]:
        assert self.batch_handler is not None
        outcomes: dict[Delivery, Outcome] = {d: d.error for d in batch if d.error is not None}
        decoded = [delivery for delivery in batch if delivery.error is None]
        if decoded:
            try:
                results: Sequence[Produced | BaseException] = await self.batch_handler(decoded)
            except Abandoned:
                raise
            except Exception as exc:
                results = [exc] * len(decoded)
            for delivery, result in zip(decoded, results, strict=True):
                try:
                    outcomes[delivery] = result if isinstance(result, BaseException) else self.outputs(result)
                except Exception as exc:
                    outcomes[delivery] = exc
        return [outcomes[delivery] for delivery in batch]
