"""The shared runtime, through a declared Service, against the embedded Kafka-protocol broker.

At-least-once commits, dead-lettering, retries, a poison message that does not block its
partition, backpressure by pausing, flow control, a broker outage, errors Kafka says will not
clear, and a handover between two members.
"""

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from aiokafka.structs import TopicPartition

from atelier_shared import (
    AtelierSettings,
    BatchPolicy,
    EventProducer,
    InvalidImage,
    Options,
    Outgoing,
    Service,
    StoreUnavailable,
    events,
    hold,
    topics,
)
from atelier_shared.runtime.retrying import Abandoned
from tests.conftest import Deployment
from tests.kafka import group_lag, partition_lags, produce, read_topic

pytestmark = pytest.mark.service

GROUP = "test"
Before = Callable[[events.AssetUploaded], Awaitable[None]]


def uploaded(asset_id: str, brand: str = "acme") -> events.AssetUploaded:
    return events.AssetUploaded(asset=events.AssetHeader(asset_id=asset_id, brand=brand, tier=events.TIER_PRODUCTION))


async def publish(settings: AtelierSettings, asset_ids: Sequence[str]) -> None:
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    try:
        await producer.send([Outgoing(topics.UPLOADED, uploaded(asset_id)) for asset_id in asset_ids])
    finally:
        await producer.stop()


def tagger(
    seen: list[str], before: Before | None = None
) -> Callable[[events.AssetUploaded], Awaitable[events.AssetTagged]]:
    """A handler that tags every upload (after `before`, which may fail or wait)."""

    async def tag(event: events.AssetUploaded) -> events.AssetTagged:
        if before is not None:
            await before(event)
        seen.append(event.asset.asset_id)
        return events.AssetTagged(asset=event.asset)

    return tag


async def running(settings: AtelierSettings, handler: Callable[..., Awaitable[object]], **options: object) -> Service:
    """A started service whose group "test" tags what is uploaded."""
    service = Service("test", settings)
    service.consume(
        topics.UPLOADED,
        handler,  # type: ignore[arg-type]
        publishes=topics.TAGGED,
        group=GROUP,
        options=Options(**{"backoff_initial_s": 0.05, "batch": BatchPolicy(max_items=2), **options}),  # type: ignore[arg-type]
    )
    await service.start()
    return service


@pytest.fixture
async def stopped_after() -> AsyncIterator[list[Service]]:
    """Services a test starts, stopped at its end whatever happened."""
    started: list[Service] = []
    yield started
    for service in started:
        await service.stop(timeout_s=2)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def outputs(settings: AtelierSettings, spec: topics.TopicSpec[object], count: int) -> list[str]:
    records = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(spec), until=lambda found: len(found) >= count, timeout_s=30
    )
    return [record.key.decode() for record in records]


async def dead_letters(settings: AtelierSettings, count: int) -> list[events.DeadLettered]:
    records = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda found: len(found) >= count
    )
    return [events.DeadLettered.FromString(record.value) for record in records]


async def test_outputs_then_commit_and_a_poison_message_does_not_block(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()

    async def fail_on_poison(event: events.AssetUploaded) -> None:
        if event.asset.asset_id == "poison":
            raise InvalidImage("truncated JPEG", asset_id="poison")

    stopped_after.append(await running(settings, tagger([], fail_on_poison)))
    await publish(settings, ["a", "b", "poison", "c", "d"])
    assert sorted(await outputs(settings, topics.TAGGED, 4)) == ["a", "b", "c", "d"]
    [dead] = await dead_letters(settings, 1)
    assert (dead.asset_id, dead.error_type, dead.attempts, dead.service) == ("poison", "invalid_image", 1, GROUP)
    assert dead.original_topic == settings.topics.name(topics.UPLOADED) and dead.offset >= 0
    assert events.AssetUploaded.FromString(dead.original_value).asset.asset_id == "poison"
    uploaded_topic = settings.topics.name(topics.UPLOADED)
    deadline = time.monotonic() + 10
    while await group_lag(settings.kafka_bootstrap, settings.topics.group(GROUP), [uploaded_topic]):
        assert time.monotonic() < deadline, "offsets were not committed"
        await asyncio.sleep(0.1)


async def test_a_record_too_large_to_keep_in_its_dead_letter_is_kept_by_size_and_hash(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: the dead letter of a record near Kafka's 1 MiB limit, with a long error message, was
    itself over the limit; Kafka refused it, the refusal stopped the consumer, and after a restart it
    fetched the same record again. The letter now keeps such a record by size and hash only; and an id
    or key from outside (an intake event's asset_id of 300,000 characters) is bounded as well."""
    settings = deployment.settings()

    async def fail_at_length(event: events.AssetUploaded) -> None:
        raise InvalidImage("unreadable: " + "x" * 100_000, asset_id=event.asset.asset_id)

    stopped_after.append(await running(settings, tagger([], fail_at_length)))
    large = uploaded("large")
    large.asset.source_uri = "s3://inbox/" + "a" * 1_000_000
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    try:
        long_id = uploaded("x" * 300_000)
        await producer.send([Outgoing(topics.UPLOADED, event) for event in (large, uploaded("small"), long_id)])
    finally:
        await producer.stop()
    letters = {letter.asset_id: letter for letter in await dead_letters(settings, 3)}
    assert letters["x" * 256].original_key == b"" and letters["x" * 256].original_value == b""
    assert letters["x" * 256].original_omitted and letters["large"].original_omitted
    assert not letters["small"].original_omitted
    value = large.SerializeToString()
    assert letters["large"].original_value == b"" and letters["large"].original_size == len(value)
    assert letters["large"].original_sha256 == hashlib.sha256(value).hexdigest()
    assert len(letters["large"].error_message) <= 4096
    assert events.AssetUploaded.FromString(letters["small"].original_value).asset.asset_id == "small"


async def test_transient_errors_are_retried_until_they_clear_and_never_dead_lettered(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()
    failures = {"flaky": 4}

    async def flaky_store(event: events.AssetUploaded) -> None:
        if failures.get(event.asset.asset_id, 0) > 0:
            failures[event.asset.asset_id] -= 1
            raise StoreUnavailable("store down")

    stopped_after.append(await running(settings, tagger([], flaky_store), max_attempts=2))
    await publish(settings, ["flaky", "steady"])
    assert sorted(await outputs(settings, topics.TAGGED, 2)) == ["flaky", "steady"]
    assert failures["flaky"] == 0
    dead = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda f: False, timeout_s=1
    )
    assert dead == []


async def test_unexpected_errors_are_dead_lettered_after_max_attempts(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()
    calls: list[str] = []

    async def bug(event: events.AssetUploaded) -> None:
        calls.append(event.asset.asset_id)
        raise KeyError("a bug")

    stopped_after.append(await running(settings, tagger([], bug), max_attempts=3))
    await publish(settings, ["buggy"])
    [dead] = await dead_letters(settings, 1)
    assert (dead.error_type, dead.attempts) == ("KeyError", 3)
    assert calls == ["buggy"] * 3


async def test_undecodable_record_is_dead_lettered(deployment: Deployment, stopped_after: list[Service]) -> None:
    settings = deployment.settings()
    stopped_after.append(await running(settings, tagger([])))
    await produce(
        settings.kafka_bootstrap, settings.topics.name(topics.UPLOADED), b"junk", b"\xff\xff\xff not protobuf"
    )
    await publish(settings, ["after"])
    assert await outputs(settings, topics.TAGGED, 1) == ["after"]
    [dead] = await dead_letters(settings, 1)
    assert dead.error_type == "invalid_event" and dead.original_key == b"junk"


async def test_an_output_kafka_refuses_for_good_dead_letters_its_input(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: every KafkaError was retried forever, so a record over the size limit stalled its partition."""
    settings = deployment.settings()

    async def oversized(event: events.AssetUploaded) -> events.AssetTagged:
        tagged = events.AssetTagged(asset=event.asset)
        if event.asset.asset_id == "huge":
            tagged.tags.labels.append("x" * 2_000_000)  # Over aiokafka's 1 MB max_request_size.
        return tagged

    stopped_after.append(await running(settings, oversized))
    await publish(settings, ["huge", "after"])
    assert await outputs(settings, topics.TAGGED, 1) == ["after"]
    [dead] = await dead_letters(settings, 1)
    assert (dead.asset_id, dead.error_type) == ("huge", "publish_refused")
    assert "MessageSizeTooLarge" in dead.error_message


async def test_outputs_kafka_acknowledged_are_not_sent_again_when_another_is_refused(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: when Kafka refused one output of a batch for good, every output of the batch was
    sent again one delivery at a time to find whose it was, so those already acknowledged were
    published twice (and a dead-letter batch refused likewise duplicated its letters). Only the
    records not acknowledged are sent again now."""
    settings = deployment.settings()

    async def one_of_two_oversized(event: events.AssetUploaded) -> list[events.AssetTagged]:
        fits, huge = events.AssetTagged(asset=event.asset), events.AssetTagged(asset=event.asset)
        huge.tags.labels.append("x" * 2_000_000)  # Over aiokafka's 1 MB max_request_size.
        return [fits, huge]

    stopped_after.append(await running(settings, one_of_two_oversized))
    await publish(settings, ["mixed"])
    [dead] = await dead_letters(settings, 1)
    assert (dead.asset_id, dead.error_type) == ("mixed", "publish_refused")
    tagged = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.TAGGED), until=lambda found: False, timeout_s=2
    )
    assert [record.key for record in tagged] == [b"mixed"]


async def test_a_fetch_error_kafka_calls_permanent_stops_the_service(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: a non-retriable KafkaError (here: not authorised to read the topic) was retried forever."""
    settings = deployment.settings()
    service = await running(settings, tagger([]))
    stopped_after.append(service)
    await wait_until(lambda: bool(service.loop(GROUP).consumer.assignment()))
    topic_authorization_failed, fetch = 29, 1
    deployment.infra.cluster.push_request_errors(fetch, [topic_authorization_failed] * 50)
    try:
        await publish(settings, ["any"])
        await asyncio.wait_for(service.crashed.wait(), 30)
    finally:
        deployment.infra.cluster.clear_request_errors(fetch)
    assert "TopicAuthorizationFailed" in repr(service.loop(GROUP).failure)
    assert not service.loop(GROUP).ready


async def test_full_buffer_pauses_partitions_and_resumes_without_leaving_the_group(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()
    gate = asyncio.Event()

    async def blocked(event: events.AssetUploaded) -> None:
        await gate.wait()

    service = await running(settings, tagger([], blocked), buffer=4, batch=BatchPolicy(max_items=1))
    stopped_after.append(service)
    consumer = service.loop(GROUP).consumer
    try:
        ids = [f"asset-{index}" for index in range(40)]
        await publish(settings, ids)
        await wait_until(lambda: bool(consumer.paused()))
        assert len(consumer.assignment()) == settings.topic_partitions  # Still in the group.
        gate.set()
        assert sorted(await outputs(settings, topics.TAGGED, len(ids))) == sorted(ids)
        await wait_until(lambda: not consumer.paused())
    finally:
        gate.set()


async def test_a_paused_subscription_takes_nothing_new_and_holds_nothing_a_rebalance_waits_for(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()
    seen: list[str] = []
    service = await running(settings, tagger(seen), batch=BatchPolicy(max_items=1))
    stopped_after.append(service)
    loop = service.loop(GROUP)
    await publish(settings, ["before"])
    await wait_until(lambda: seen == ["before"])
    loop.subscription.pause()
    await wait_until(lambda: len(loop.consumer.paused()) == settings.topic_partitions)
    await publish(settings, ["while-paused"])
    await asyncio.sleep(1.0)  # Long enough for a fetch that should not happen.
    assert seen == ["before"]
    await asyncio.wait_for(loop.on_revoked(loop.consumer.assignment()), 10)  # Nothing in flight to wait for.
    loop.subscription.resume()
    await wait_until(lambda: "while-paused" in seen)


async def test_a_batch_taken_while_a_rebalance_drains_drops_its_revoked_records(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Bug: a batch taken while a rebalance waited for the batches in flight was handled after it,
    revoked records and all, duplicating the work of the partitions' new owner."""
    settings = deployment.settings()
    held, release = asyncio.Event(), asyncio.Event()

    async def stick_on_first(event: events.AssetUploaded) -> None:
        if event.asset.asset_id == "first":
            held.set()
            await release.wait()

    seen: list[str] = []
    service = await running(settings, tagger(seen, stick_on_first), batch=BatchPolicy(max_items=1), in_flight=2)
    stopped_after.append(service)
    loop = service.loop(GROUP)
    await publish(settings, ["first"])
    await wait_until(held.is_set)
    revoking = asyncio.create_task(loop.on_revoked(loop.consumer.assignment()))  # Waits for "first".
    try:
        await publish(settings, ["late"])
        deadline = time.monotonic() + 30
        while sum([await loop.consumer.position(tp) for tp in loop.consumer.assignment()]) < 2:
            assert time.monotonic() < deadline, '"late" was not fetched'
            await asyncio.sleep(0.05)
        await wait_until(lambda: loop.buffered == 0)  # Fetched and taken: the batch waits to start.
        await asyncio.sleep(0.2)
        assert not revoking.done() and "late" not in seen
    finally:
        release.set()
    await asyncio.wait_for(revoking, 10)
    await asyncio.sleep(0.5)  # Long enough for the batch taken to run, were it not dropped.
    assert seen == ["first"]
    # As a real rebalance would, the partitions are handed back from their committed offsets.
    await loop.on_assigned(loop.consumer.assignment())
    for partition in loop.consumer.assignment():
        loop.consumer.seek(partition, await loop.consumer.committed(partition) or 0)
    await wait_until(lambda: "late" in seen)
    assert seen == ["first", "late"]


async def test_broker_outage_delays_but_loses_nothing(deployment: Deployment, stopped_after: list[Service]) -> None:
    settings = deployment.settings()
    stopped_after.append(await running(settings, tagger([])))
    cluster = deployment.infra.cluster
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


async def test_handover_to_a_new_member_redelivers_what_was_not_committed(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """A member leaving with work buffered and one record stuck: the next member gets all of it.

    (Two live members of one group are not tested here: librdkafka's mock broker fails SyncGroup
    when the leader syncs before a follower, so such a group never settles. Real Kafka is fine.)
    """
    settings = deployment.settings()
    stuck = asyncio.Event()
    held = asyncio.Event()
    first_seen: list[str] = []

    async def stick_on_one(event: events.AssetUploaded) -> None:
        if event.asset.asset_id == "asset-5":
            held.set()
            await stuck.wait()

    ids = [f"asset-{index}" for index in range(20)]
    first = await running(settings, tagger(first_seen, stick_on_one), batch=BatchPolicy(max_items=1))
    await publish(settings, ids)
    await wait_until(held.is_set)  # Whatever order the partitions are fetched in.
    await first.stop(timeout_s=1.0)  # Leaves the group; the stuck batch is abandoned uncommitted.
    assert "asset-5" not in first_seen

    second_seen: list[str] = []
    stopped_after.append(await running(settings, tagger(second_seen)))
    try:
        await wait_until(lambda: set(first_seen) | set(second_seen) == set(ids), timeout_s=40)
        assert "asset-5" in second_seen
        assert set(ids) - set(first_seen) <= set(second_seen)
    finally:
        stuck.set()


async def test_batches_in_flight_overlap_up_to_their_limit(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    settings = deployment.settings()
    started: list[str] = []
    release = asyncio.Event()

    async def hold(event: events.AssetUploaded) -> None:
        started.append(event.asset.asset_id)
        await release.wait()

    seen: list[str] = []
    ids = [f"asset-{index}" for index in range(6)]
    stopped_after.append(await running(settings, tagger(seen, hold), batch=BatchPolicy(max_items=1), in_flight=2))
    await publish(settings, ids)
    await wait_until(lambda: len(started) == 2)
    await asyncio.sleep(0.5)  # Room for a third batch to start, were there room for one.
    assert len(started) == 2
    release.set()
    await wait_until(lambda: sorted(seen) == ids)


async def test_a_batch_in_flight_holds_back_its_partitions_commit_while_later_ones_finish(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """With two batches in flight the second may finish first; the committed offset must not pass the first."""
    settings = deployment.settings()
    release = asyncio.Event()

    async def stick_on_one(event: events.AssetUploaded) -> None:
        if event.asset.asset_id == "asset-0":
            await release.wait()

    seen: list[str] = []
    ids = [f"asset-{index}" for index in range(8)]
    stopped_after.append(
        await running(settings, tagger(seen, stick_on_one), batch=BatchPolicy(max_items=1), in_flight=2)
    )
    await publish(settings, ids)
    uploaded_topic = settings.topics.name(topics.UPLOADED)
    records = await read_topic(settings.kafka_bootstrap, uploaded_topic, until=lambda found: len(found) >= len(ids))
    stuck = next(record for record in records if record.key == b"asset-0")
    partition = TopicPartition(uploaded_topic, stuck.partition)
    behind = sum(1 for record in records if record.partition == stuck.partition and record.offset >= stuck.offset)
    await wait_until(lambda: sorted(seen) == ids[1:])
    deadline = time.monotonic() + 10
    while True:
        lags = await partition_lags(*lag_of(settings))
        if not any(lag for other, lag in lags.items() if other != partition):
            break
        assert time.monotonic() < deadline, f"the other partitions were not committed: {lags}"
        await asyncio.sleep(0.1)
    assert lags[partition] == behind  # Committed up to the stuck record, not past it.
    release.set()
    await wait_until(lambda: sorted(seen) == ids)
    deadline = time.monotonic() + 10
    while await group_lag(*lag_of(settings)):
        assert time.monotonic() < deadline, "offsets were not committed"
        await asyncio.sleep(0.1)


def lag_of(settings: AtelierSettings) -> tuple[str, str, list[str]]:
    """group_lag's and partition_lags' arguments for the test group on `uploaded`."""
    return settings.kafka_bootstrap, settings.topics.group(GROUP), [settings.topics.name(topics.UPLOADED)]


async def test_a_consumer_loop_that_dies_crashes_the_service_and_it_is_not_ready(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """A bug outside any handler (here in the batch key) must stop the service, not leave it idle."""
    settings = deployment.settings()
    service = await running(settings, tagger([]), batch_key=lambda event: 1 / 0)
    stopped_after.append(service)
    await publish(settings, ["any"])
    await asyncio.wait_for(service.crashed.wait(), 30)
    assert isinstance(service.loop(GROUP).failure, ZeroDivisionError) and not service.loop(GROUP).ready


async def test_a_background_loop_that_dies_crashes_the_service(deployment: Deployment) -> None:
    settings = deployment.settings()
    service = Service("test", settings)

    async def broken() -> None:
        raise RuntimeError("a bug in a background loop")

    service.background("broken", broken)
    await service.start()
    try:
        await asyncio.wait_for(service.crashed.wait(), 10)
    finally:
        await service.stop()


async def test_a_handler_waiting_on_the_services_shutdown_is_abandoned_not_dead_lettered(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: Abandoned raised by a record handler (the webhook retries wait on shutdown.sleep)
    was an outcome like any error: retried, and on its last attempt dead-lettered while the service
    stopped. It now leaves the record uncommitted, and the next member handles it."""
    settings = deployment.settings()
    service = Service("test", settings)
    waiting = asyncio.Event()

    async def wait_long(event: events.AssetUploaded) -> events.AssetTagged:
        waiting.set()
        await service.shutdown.sleep(3600)
        return events.AssetTagged(asset=event.asset)

    service.consume(topics.UPLOADED, wait_long, publishes=topics.TAGGED, group=GROUP, options=Options(max_attempts=1))
    await service.start()
    await publish(settings, ["patient"])
    await wait_until(waiting.is_set)
    await service.stop(timeout_s=20)

    seen: list[str] = []
    stopped_after.append(await running(settings, tagger(seen)))
    await wait_until(lambda: seen == ["patient"], timeout_s=40)
    dead = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.DEAD_LETTER), until=lambda found: False, timeout_s=2
    )
    assert dead == []


async def test_a_rebalance_ends_a_handlers_hold_and_the_record_is_handled_again(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """Regression: a webhook retry waited for its due time inside its handler, and a rebalance of its
    group waited for it (up to the tier's delay: half an hour), every member of the group stopped
    meanwhile. A hold now ends when a rebalance begins; the record stays uncommitted and the owner of
    its partition takes it again (here the same member, which keeps its partitions)."""
    settings = deployment.settings()
    holds: list[str] = []

    async def hold_first(event: events.AssetUploaded) -> None:
        holds.append(event.asset.asset_id)
        if len(holds) == 1:
            await hold(3600)

    seen: list[str] = []
    service = await running(settings, tagger(seen, hold_first), batch=BatchPolicy(max_items=1))
    stopped_after.append(service)
    loop = service.loop(GROUP)
    await publish(settings, ["due-later"])
    await wait_until(lambda: holds == ["due-later"])
    await asyncio.wait_for(loop.on_revoked(set()), 10)  # Revoking nothing: the member keeps its partitions.
    await wait_until(lambda: seen == ["due-later"])
    assert holds == ["due-later", "due-later"]
    assert await outputs(settings, topics.TAGGED, 1) == ["due-later"]


async def test_holds_end_as_soon_as_the_services_shutdown_begins(
    deployment: Deployment, stopped_after: list[Service]
) -> None:
    """From a review: holds (and so the retry back-off) ended only when their consumer loop was
    stopped, after the HTTP server had drained (up to a minute), so retries went on meanwhile and an
    error of unknown kind could use up its attempts and be dead-lettered while the service stopped."""
    settings = deployment.settings()
    holding, ended = asyncio.Event(), asyncio.Event()

    async def hold_until_ended(event: events.AssetUploaded) -> None:
        holding.set()
        try:
            await hold(3600)
        except Abandoned:
            ended.set()
            raise

    service = await running(settings, tagger([], hold_until_ended))
    stopped_after.append(service)
    await publish(settings, ["held"])
    await wait_until(holding.is_set)
    service.shutdown.begin()
    await asyncio.wait_for(ended.wait(), 10)
