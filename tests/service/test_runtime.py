"""The shared consumer runtime against the embedded Kafka-protocol broker.

At-least-once commits, dead-lettering, retries, a poison message that does not block its
partition, backpressure by pausing, a broker outage, and a rebalance between two members.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest

from atelier_shared import (
    AtelierSettings,
    BatchPolicy,
    ConsumerConfig,
    ConsumerRuntime,
    Delivery,
    EventProducer,
    InvalidImage,
    Outgoing,
    StoreUnavailable,
    events,
    per_record,
    topics,
)
from tests.conftest import Deployment
from tests.kafka import group_lag, produce, read_topic

pytestmark = pytest.mark.service


def uploaded(asset_id: str, brand: str = "acme") -> events.AssetUploaded:
    return events.AssetUploaded(asset=events.AssetHeader(asset_id=asset_id, brand=brand, tier=events.TIER_PRODUCTION))


async def publish(settings: AtelierSettings, asset_ids: Sequence[str]) -> None:
    producer = EventProducer(settings.kafka_bootstrap, "test")
    await producer.start()
    try:
        await producer.send_all(
            [(Outgoing(settings.topics.name(topics.UPLOADED), a, uploaded(a)), None) for a in asset_ids]
        )
    finally:
        await producer.stop()


def tag_handler(
    settings: AtelierSettings, seen: list[str], before: Callable[[Delivery], Awaitable[None]] | None = None
):  # type: ignore[no-untyped-def]
    async def handle(delivery: Delivery) -> list[Outgoing]:
        if before is not None:
            await before(delivery)
        seen.append(delivery.asset_id)
        tagged = events.AssetTagged(asset=delivery.event.asset)
        return [Outgoing(settings.topics.name(topics.TAGGED), delivery.asset_id, tagged)]

    return handle


async def run_runtime(
    settings: AtelierSettings,
    handler: Callable[[Delivery], Awaitable[list[Outgoing]]],
    on_failure: Callable[[BaseException], None] = lambda error: None,
    **config: object,
) -> tuple[ConsumerRuntime, EventProducer]:
    producer = EventProducer(settings.kafka_bootstrap, "test-runtime")
    await producer.start()
    runtime = ConsumerRuntime(
        "test",
        settings,
        ConsumerConfig(
            group_id=settings.topics.group("test"),
            topics={settings.topics.name(topics.UPLOADED): 0},
            backoff_initial_s=0.05,
            **config,  # type: ignore[arg-type]
        ),
        per_record(handler),
        producer,
        on_failure=on_failure,
    )
    await runtime.start()
    return runtime, producer


async def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def outputs(settings: AtelierSettings, spec: topics.TopicSpec, count: int) -> list[str]:
    records = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(spec), until=lambda found: len(found) >= count, timeout_s=30
    )
    return [record.key.decode() for record in records]


async def test_outputs_then_commit_and_a_poison_message_does_not_block(deployment: Deployment) -> None:
    settings = deployment.settings()
    seen: list[str] = []

    async def fail_on_poison(delivery: Delivery) -> None:
        if delivery.asset_id == "poison":
            raise InvalidImage("truncated JPEG", asset_id="poison")

    ids = ["a", "b", "poison", "c", "d"]
    runtime, producer = await run_runtime(settings, tag_handler(settings, seen, fail_on_poison))
    try:
        await publish(settings, ids)
        assert sorted(await outputs(settings, topics.TAGGED, 4)) == ["a", "b", "c", "d"]
        [letter] = await read_topic(
            settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda f: len(f) >= 1
        )
        dead = events.DeadLettered.FromString(letter.value)
        assert (dead.asset_id, dead.error_type, dead.attempts, dead.service) == ("poison", "invalid_image", 1, "test")
        assert dead.original_topic == settings.topics.name(topics.UPLOADED) and dead.offset >= 0
        assert events.AssetUploaded.FromString(dead.original_value).asset.asset_id == "poison"
        uploaded_topic = settings.topics.name(topics.UPLOADED)
        deadline = time.monotonic() + 10
        while (
            await group_lag(settings.kafka_bootstrap, settings.topics.group("test"), [uploaded_topic])
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)
        assert await group_lag(settings.kafka_bootstrap, settings.topics.group("test"), [uploaded_topic]) == 0
    finally:
        await runtime.stop()
        await producer.stop()


async def test_transient_errors_are_retried_until_they_clear_and_never_dead_lettered(deployment: Deployment) -> None:
    settings = deployment.settings()
    seen: list[str] = []
    failures = {"flaky": 4}

    async def flaky_store(delivery: Delivery) -> None:
        if failures.get(delivery.asset_id, 0) > 0:
            failures[delivery.asset_id] -= 1
            raise StoreUnavailable("store down")

    runtime, producer = await run_runtime(settings, tag_handler(settings, seen, flaky_store), max_attempts=2)
    try:
        await publish(settings, ["flaky", "steady"])
        assert sorted(await outputs(settings, topics.TAGGED, 2)) == ["flaky", "steady"]
        assert failures["flaky"] == 0
        dead = await read_topic(
            settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda f: False, timeout_s=1
        )
        assert dead == []
    finally:
        await runtime.stop()
        await producer.stop()


async def test_unexpected_errors_are_dead_lettered_after_max_attempts(deployment: Deployment) -> None:
    settings = deployment.settings()
    calls: list[str] = []

    async def bug(delivery: Delivery) -> None:
        calls.append(delivery.asset_id)
        raise KeyError("a bug")

    runtime, producer = await run_runtime(settings, tag_handler(settings, [], bug), max_attempts=3)
    try:
        await publish(settings, ["buggy"])
        [letter] = await read_topic(
            settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda f: len(f) >= 1
        )
        dead = events.DeadLettered.FromString(letter.value)
        assert (dead.error_type, dead.attempts) == ("KeyError", 3)
        assert calls == ["buggy"] * 3
    finally:
        await runtime.stop()
        await producer.stop()


async def test_undecodable_record_is_dead_lettered(deployment: Deployment) -> None:
    settings = deployment.settings()
    runtime, producer = await run_runtime(settings, tag_handler(settings, []))
    try:
        await produce(
            settings.kafka_bootstrap, settings.topics.name(topics.UPLOADED), b"junk", b"\xff\xff\xff not protobuf"
        )
        await publish(settings, ["after"])
        assert await outputs(settings, topics.TAGGED, 1) == ["after"]
        [letter] = await read_topic(
            settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda f: len(f) >= 1
        )
        dead = events.DeadLettered.FromString(letter.value)
        assert dead.error_type == "invalid_event" and dead.original_key == b"junk"
    finally:
        await runtime.stop()
        await producer.stop()


async def test_full_buffer_pauses_partitions_and_resumes_without_leaving_the_group(deployment: Deployment) -> None:
    settings = deployment.settings()
    gate = asyncio.Event()
    seen: list[str] = []

    async def blocked(delivery: Delivery) -> None:
        await gate.wait()

    runtime, producer = await run_runtime(
        settings, tag_handler(settings, seen, blocked), buffer_per_priority=4, batch=BatchPolicy(max_items=1)
    )
    try:
        ids = [f"asset-{index}" for index in range(40)]
        await publish(settings, ids)
        await wait_until(lambda: bool(runtime.consumer.paused()))
        assert len(runtime.consumer.assignment()) == settings.topic_partitions  # Still in the group.
        gate.set()
        assert sorted(await outputs(settings, topics.TAGGED, len(ids))) == sorted(ids)
        await wait_until(lambda: not runtime.consumer.paused())
    finally:
        gate.set()
        await runtime.stop()
        await producer.stop()


async def test_broker_outage_delays_but_loses_nothing(deployment: Deployment) -> None:
    settings = deployment.settings()
    runtime, producer = await run_runtime(settings, tag_handler(settings, []))
    cluster = deployment.infra.cluster
    try:
        await publish(settings, ["before"])
        assert await outputs(settings, topics.TAGGED, 1) == ["before"]
        cluster.broker_down(1)
        try:
            # Sends to partitions led by broker 1 wait for it; the outage lasts 3 s.
            sending = asyncio.create_task(publish(settings, [f"during-{index}" for index in range(6)]))
            await asyncio.sleep(3)
        finally:
            cluster.broker_up(1)
        await asyncio.wait_for(sending, 60)
        keys = await outputs(settings, topics.TAGGED, 7)
        assert {f"during-{index}" for index in range(6)} <= set(keys)
    finally:
        await runtime.stop()
        await producer.stop()


async def test_handover_to_a_new_member_redelivers_what_was_not_committed(deployment: Deployment) -> None:
    """A member leaving with work buffered and one record stuck: the next member gets all of it.

    (Two live members of one group are not tested here: librdkafka's mock broker fails SyncGroup
    when the leader syncs before a follower, so such a group never settles. Real Kafka is fine.)
    """
    settings = deployment.settings()
    stuck = asyncio.Event()
    held = asyncio.Event()
    first_seen: list[str] = []

    async def stick_on_one(delivery: Delivery) -> None:
        if delivery.asset_id == "asset-5":
            held.set()
            await stuck.wait()

    ids = [f"asset-{index}" for index in range(20)]
    first, first_producer = await run_runtime(
        settings, tag_handler(settings, first_seen, stick_on_one), batch=BatchPolicy(max_items=1)
    )
    await publish(settings, ids)
    await wait_until(held.is_set)  # Whatever order the partitions are fetched in.
    await first.stop(timeout_s=1.0)  # Leaves the group; the stuck batch is abandoned uncommitted.
    await first_producer.stop()
    assert "asset-5" not in first_seen

    second_seen: list[str] = []
    second, second_producer = await run_runtime(settings, tag_handler(settings, second_seen))
    try:
        await wait_until(lambda: set(first_seen) | set(second_seen) == set(ids), timeout_s=40)
        assert "asset-5" in second_seen
        assert set(ids) - set(first_seen) <= set(second_seen)
    finally:
        stuck.set()
        await second.stop()
        await second_producer.stop()


async def test_a_consumer_loop_that_dies_reports_the_failure_and_is_not_ready(deployment: Deployment) -> None:
    """A bug outside any handler (here in the batch key) must stop the service, not leave it idle."""
    settings = deployment.settings()
    crashed = asyncio.Event()
    runtime, producer = await run_runtime(
        settings, tag_handler(settings, []), on_failure=lambda error: crashed.set(), batch_key=lambda delivery: 1 / 0
    )
    try:
        await publish(settings, ["any"])
        await asyncio.wait_for(crashed.wait(), 30)
        assert isinstance(runtime.failure, ZeroDivisionError) and not runtime.ready
    finally:
        await runtime.stop()
        await producer.stop()
