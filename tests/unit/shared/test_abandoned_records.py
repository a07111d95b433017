"""A stop or a rebalance abandons only the records still waiting, never those that finished."""

import asyncio
from collections.abc import Sequence

from aiokafka.structs import ConsumerRecord

from atelier_shared import StoreUnavailable, events, hold, topics
from atelier_shared.runtime.delivery import Delivery, Outgoing
from atelier_shared.runtime.layers import Retry
from atelier_shared.runtime.retrying import Abandoned, interruptible
from atelier_shared.runtime.subscription import Options, Outcome, Subscription


def delivery(offset: int, asset_id: str) -> Delivery:
    value = events.AssetUploaded(asset=events.AssetHeader(asset_id=asset_id)).SerializeToString()
    record = ConsumerRecord("atelier.uploaded", 0, offset, 0, 0, b"", value, None, 0, len(value), [])  # type: ignore[call-arg]
    return Delivery.of(record, topics.UPLOADED, 0, 0)


async def test_a_hold_ended_by_a_rebalance_abandons_its_record_alone() -> None:
    """Regression: one record of a batch abandoned made the whole batch Abandoned, so the records of
    the batch that had finished (a webhook already delivered) were handled again after a rebalance."""
    handled: list[str] = []

    async def tag(event: events.AssetUploaded) -> events.AssetTagged:
        if event.asset.asset_id == "not-due":
            await hold(3600)
        handled.append(event.asset.asset_id)
        return events.AssetTagged(asset=event.asset)

    subscription = Subscription("test", "test", topics.TAGGED, Options(concurrency=2))
    subscription.record_handlers[topics.UPLOADED] = tag
    interrupt = asyncio.Event()
    with interruptible(interrupt):
        handling = asyncio.create_task(subscription.handle([delivery(1, "due"), delivery(2, "not-due")]))
    async with asyncio.timeout(5):
        while handled != ["due"]:
            await asyncio.sleep(0.01)
        interrupt.set()
        done, not_due = await handling
    assert [item.event.asset.asset_id for item in done] == ["due"]  # type: ignore[union-attr]
    assert isinstance(not_due, Abandoned)


async def test_a_retry_back_off_ended_by_a_rebalance_keeps_the_outcomes_already_settled() -> None:
    """A record retried while its store is down is abandoned when a rebalance begins (the rebalance
    does not wait for the store); a record of the batch that succeeded keeps its published outputs."""
    settled = Outgoing(topics.TAGGED, events.AssetTagged())

    async def store_down_for_one(batch: Sequence[Delivery]) -> list[Outcome]:
        return [[settled] if item.asset_id == "stored" else StoreUnavailable("down") for item in batch]

    retry = Retry("test", max_attempts=3, initial_s=0.01, max_s=0.05)
    interrupt = asyncio.Event()
    with interruptible(interrupt):
        retrying = asyncio.create_task(retry([delivery(1, "stored"), delivery(2, "waiting")], store_down_for_one))
    await asyncio.sleep(0.2)  # A few attempts.
    assert not retrying.done()
    interrupt.set()
    async with asyncio.timeout(5):
        stored, waiting = await retrying
    assert stored == [settled] and isinstance(waiting, Abandoned)
