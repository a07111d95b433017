"""The fair queue (priority, round-robin by brand, batching by key and cost) and offset tracking."""

import asyncio
import time
from dataclasses import dataclass

import pytest
from aiokafka.structs import TopicPartition

from atelier_shared.runtime.scheduling import BatchPolicy, FairQueue, InFlight, OffsetTracker

PARTITION = TopicPartition("topic", 0)


@dataclass(eq=False)
class Item:
    name: str
    priority: int = 0
    fairness_key: str = "a"
    topic_partition: TopicPartition = PARTITION
    style: str = "x"
    pixels: float = 1.0


async def drain(queue: FairQueue[Item], policy: BatchPolicy, **kwargs: object) -> list[list[str]]:
    batches = []
    while len(queue):
        batches.append([item.name for item in await queue.take(policy, **kwargs)])  # type: ignore[arg-type]
    return batches


async def test_higher_priority_first_then_round_robin_across_brands() -> None:
    queue: FairQueue[Item] = FairQueue()
    for index in range(4):
        queue.put(Item(f"burst{index}", priority=1, fairness_key="burst"))
    queue.put(Item("other0", priority=1, fairness_key="other"))
    queue.put(Item("other1", priority=1, fairness_key="other"))
    queue.put(Item("preview", priority=0, fairness_key="burst"))

    assert await drain(queue, BatchPolicy(max_items=1)) == [
        ["preview"],
        ["burst0"],
        ["other0"],
        ["burst1"],
        ["other1"],
        ["burst2"],
        ["burst3"],
    ]


async def test_batches_share_a_key_and_respect_the_cost_budget() -> None:
    queue: FairQueue[Item] = FairQueue()
    for index in range(3):
        queue.put(Item(f"x{index}", style="x", pixels=4))
        queue.put(Item(f"y{index}", style="y", pixels=4))
    policy = BatchPolicy(max_items=8, max_cost=8)
    batches = await drain(queue, policy, batch_key=lambda item: item.style, cost=lambda item: item.pixels)
    assert batches == [["x0", "x1"], ["y0", "y1"], ["x2"], ["y2"]]


async def test_first_item_is_taken_even_over_budget() -> None:
    queue: FairQueue[Item] = FairQueue()
    queue.put(Item("huge", pixels=100))
    batch = await queue.take(BatchPolicy(max_items=4, max_cost=10), cost=lambda item: item.pixels)
    assert [item.name for item in batch] == ["huge"]


async def test_waits_up_to_max_wait_for_stragglers() -> None:
    queue: FairQueue[Item] = FairQueue()
    queue.put(Item("first"))

    async def late() -> None:
        await asyncio.sleep(0.05)
        queue.put(Item("second"))

    task = asyncio.create_task(late())
    started = time.monotonic()
    batch = await queue.take(BatchPolicy(max_items=2, max_wait_ms=2000))
    await task
    assert [item.name for item in batch] == ["first", "second"]
    assert time.monotonic() - started < 1.5  # Returned when full, not at the deadline.


async def test_discard_removes_revoked_partitions_only() -> None:
    queue: FairQueue[Item] = FairQueue()
    other = TopicPartition("topic", 1)
    queue.put(Item("kept", topic_partition=other))
    queue.put(Item("revoked"))
    removed = queue.discard({PARTITION})
    assert [item.name for item in removed] == ["revoked"]
    assert len(queue) == 1 and queue.count(0) == 1


async def test_a_batch_cancelled_while_gathering_goes_back_to_the_buffer() -> None:
    """Bug: a take cancelled at shutdown while waiting for stragglers lost the items it had popped
    from the buffer's count, so the buffered-records gauge never came back to zero."""
    queue: FairQueue[Item] = FairQueue()
    queue.put(Item("first"))
    taking = asyncio.create_task(queue.take(BatchPolicy(max_items=2, max_wait_ms=10_000)))
    await asyncio.sleep(0.05)
    assert len(queue) == 0  # Popped, waiting for a second item.
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking
    assert [item.name for item in queue.drain()] == ["first"]


def test_forgetting_a_partition_starts_a_new_epoch() -> None:
    """Records fetched before a revocation carry the old epoch, so a batch taken then is told apart."""
    tracker = OffsetTracker()
    other = TopicPartition("topic", 1)
    assert tracker.epoch(PARTITION) == tracker.epoch(other) == 0
    tracker.add(PARTITION, 0)
    tracker.forget({PARTITION})
    assert (tracker.epoch(PARTITION), tracker.epoch(other)) == (1, 0)
    tracker.done(PARTITION, 0)  # A record of the old epoch finishing: nothing to commit.
    assert tracker.committable() == {}


def test_offsets_commit_only_past_contiguous_done_records() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.add(PARTITION, offset)
    tracker.done(PARTITION, 1)
    assert tracker.committable() == {}
    tracker.done(PARTITION, 0)
    assert tracker.committable() == {PARTITION: 2}
    tracker.committed({PARTITION: 2})
    assert tracker.committable() == {}
    tracker.done(PARTITION, 3)
    tracker.done(PARTITION, 2)
    assert tracker.committable() == {PARTITION: 4}


def test_a_failed_commit_is_offered_again() -> None:
    tracker = OffsetTracker()
    tracker.add(PARTITION, 0)
    tracker.done(PARTITION, 0)
    assert tracker.committable() == {PARTITION: 1}
    assert tracker.committable() == {PARTITION: 1}  # Not committed yet: still offered.


async def test_batches_in_flight_stay_within_the_limit_and_a_drain_waits_for_them() -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def handle(batch: int) -> None:
        started.append(batch)
        await release.wait()

    batches = iter(range(10))

    async def take() -> int:
        return next(batches)

    in_flight: InFlight[int] = InFlight(2, lambda task: True)
    assert await in_flight.start(take, handle, "1") and await in_flight.start(take, handle, "2")
    third = asyncio.create_task(in_flight.start(take, handle, "3"))
    await asyncio.sleep(0.05)
    assert started == [0, 1] and not third.done()  # No room: the third is not even taken.
    release.set()
    assert await asyncio.wait_for(third, 5)
    async with in_flight.drained():
        assert started == [0, 1, 2]


async def test_after_a_batch_fails_no_further_batch_starts() -> None:
    """Regression: with two batches in flight, the loop holding the other slot started one more batch
    after a batch's failure had stopped the service."""
    handled: list[int] = []

    async def handle(batch: int) -> None:
        handled.append(batch)
        if batch == 0:
            raise RuntimeError("a bug past every handler")

    batches = iter(range(10))

    async def take() -> int:
        return next(batches)

    ended: list[BaseException | None] = []

    def go_on(task: "asyncio.Task[None]") -> bool:
        ended.append(task.exception())
        return task.exception() is None

    in_flight: InFlight[int] = InFlight(2, go_on)
    assert await in_flight.start(take, handle, "fails")
    async with in_flight.drained():
        assert isinstance(ended[0], RuntimeError)
    assert not await in_flight.start(take, handle, "after")
    assert handled == [0]
