"""Buffering between Kafka and a service's handler: priority, fairness, batching, batches in flight,
commit offsets.

Records are served by priority (lower number first), and within a priority round-robin across
fairness keys (brands), so one brand's burst cannot starve another. Batches gather items that
share a batch key (for example the model), up to a count and a cost budget (for example pixels
against a GPU memory budget), waiting at most a bounded time for stragglers.
"""

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiokafka.structs import TopicPartition


class Schedulable(Protocol):
    """What the queue needs to know of an item."""

    @property
    def priority(self) -> int: ...

    @property
    def fairness_key(self) -> str: ...

    @property
    def topic_partition(self) -> TopicPartition: ...


Item = TypeVar("Item", bound=Schedulable)
Batch = TypeVar("Batch")


@dataclass(frozen=True)
class BatchPolicy:
    """How many items a batch may hold, how long to wait for more, and its cost budget."""

    max_items: int = 1
    max_wait_ms: float = 0.0
    # Budget of summed item costs per batch; the first item is always taken.
    max_cost: float = float("inf")


class FairQueue(Generic[Item]):
    """Priority lanes, each round-robin across fairness keys."""

    def __init__(self) -> None:
        self._lanes: dict[int, OrderedDict[str, deque[Item]]] = {}
        self._counts: dict[int, int] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return sum(self._counts.values())

    def count(self, priority: int) -> int:
        """Items buffered at one priority."""
        return self._counts.get(priority, 0)

    def put(self, item: Item) -> None:
        """Buffer an item behind others of its priority and key."""
        lane = self._lanes.setdefault(item.priority, OrderedDict())
        lane.setdefault(item.fairness_key, deque()).append(item)
        self._counts[item.priority] = self._counts.get(item.priority, 0) + 1
        self._changed.set()

    def discard(self, partitions: Iterable[TopicPartition]) -> list[Item]:
        """Remove and return the items of these partitions (revoked in a rebalance)."""
        revoked = set(partitions)
        removed: list[Item] = []
        for priority, lane in self._lanes.items():
            for key in list(lane):
                kept = deque(item for item in lane[key] if item.topic_partition not in revoked)
                removed.extend(item for item in lane[key] if item.topic_partition in revoked)
                if kept:
                    lane[key] = kept
                else:
                    del lane[key]
            self._counts[priority] = sum(len(items) for items in lane.values())
        return removed

    def drain(self) -> list[Item]:
        """Remove and return every buffered item (at shutdown)."""
        items = [item for lane in self._lanes.values() for queue in lane.values() for item in queue]
        self._lanes.clear()
        self._counts.clear()
        return items

    def _pop(self, matches: Callable[[Item], bool], room: float, cost: Callable[[Item], float]) -> Item | None:
        """The next matching item in priority then round-robin order that fits `room`."""
        for priority in sorted(self._lanes):
            lane = self._lanes[priority]
            for key in list(lane):
                items = lane[key]
                for index, item in enumerate(items):
                    if matches(item) and cost(item) <= room:
                        del items[index]
                        if items:
                            lane.move_to_end(key)
                        else:
                            del lane[key]
                        self._counts[priority] -= 1
                        return item
        return None

    async def wait_for_items(self) -> None:
        """Return once at least one item is buffered."""
        while not len(self):
            self._changed.clear()
            await self._changed.wait()

    async def take(
        self,
        policy: BatchPolicy,
        batch_key: Callable[[Item], Hashable] = lambda item: None,
        cost: Callable[[Item], float] = lambda item: 1.0,
    ) -> list[Item]:
        """Wait for one item, then gather a batch of items sharing its batch key."""
        await self.wait_for_items()
        first = self._pop(lambda item: True, float("inf"), cost)
        assert first is not None
        batch = [first]
        key = batch_key(first)
        spent = cost(first)
        deadline = time.monotonic() + policy.max_wait_ms / 1000
        try:
            while len(batch) < policy.max_items:
                item = self._pop(lambda item: batch_key(item) == key, policy.max_cost - spent, cost)
                if item is not None:
                    batch.append(item)
                    spent += cost(item)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
        except asyncio.CancelledError:
            for item in batch:  # Back in the buffer, where a shutdown's drain counts them.
                self.put(item)
            raise
        return batch


class OffsetTracker:
    """Per partition, the offset up to which every record is done: what may be committed."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, OrderedDict[int, bool]] = {}
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._epochs: dict[TopicPartition, int] = {}

    def epoch(self, partition: TopicPartition) -> int:
        """How many times the partition was forgotten: a record fetched in an older epoch was revoked."""
        return self._epochs.get(partition, 0)

    def add(self, partition: TopicPartition, offset: int) -> None:
        """A record was fetched and must be done before its offset is committed."""
        self._pending.setdefault(partition, OrderedDict())[offset] = False

    def done(self, partition: TopicPartition, offset: int) -> None:
        """A record is handled and its outputs are acknowledged."""
        pending = self._pending.get(partition)
        if pending is None or offset not in pending:
            return
        pending[offset] = True
        while pending:
            first, finished = next(iter(pending.items()))
            if not finished:
                break
            pending.popitem(last=False)
            self._position[partition] = first + 1

    def committable(self) -> dict[TopicPartition, int]:
        """Next offsets to commit, for partitions that advanced past their last commit."""
        return {
            partition: position
            for partition, position in self._position.items()
            if position > self._committed.get(partition, -1)
        }

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Record a successful commit."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop state of partitions this consumer no longer owns."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._position.pop(partition, None)
            self._committed.pop(partition, None)
            self._epochs[partition] = self.epoch(partition) + 1


class InFlight(Generic[Batch]):
    """Batches being handled, each in a task of its own: at most `limit` at once, and a gate that a
    rebalance closes to let them end while none starts. `on_end` is told of each task that ended and
    says whether to go on: after a failure no further batch is taken."""

    def __init__(self, limit: int, on_end: Callable[["asyncio.Task[None]"], bool]) -> None:
        if limit < 1:
            raise ValueError(f"at least one batch must be in flight, not {limit}")
        self._room = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Lock()
        self._on_end = on_end
        self.stopped = False

    async def start(
        self, take: Callable[[], Awaitable[Batch]], handle: Callable[[Batch], Coroutine[Any, Any, None]], name: str
    ) -> bool:
        """Wait for room, take a batch, and start handling it; False once stopped (the batch taken
        then stays uncommitted, for the next member)."""
        await self._room.acquire()
        try:
            batch = await take()
            async with self._gate:  # A rebalance waits for every batch started.
                if self.stopped:
                    self._room.release()
                    return False
                task = asyncio.create_task(handle(batch), name=name)
                self._tasks.add(task)
                task.add_done_callback(self._ended)
        except BaseException:
            self._room.release()
            raise
        return True

    def _ended(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        self.stopped = self.stopped or not self._on_end(task)
        self._room.release()

    @contextlib.asynccontextmanager
    async def drained(self) -> AsyncIterator[None]:
        """Every batch started has ended, and none starts until the block is left."""
        async with self._gate:
            if self._tasks:
                await asyncio.wait(set(self._tasks))  # Not gather: a cancelled wait leaves them running.
            yield

    async def finish(self, timeout_s: float) -> None:
        """Let the batches in flight end, cancelling those still running after timeout_s."""
        if tasks := set(self._tasks):
            _, unfinished = await asyncio.wait(tasks, timeout=timeout_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
