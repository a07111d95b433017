"""The embedded cluster's long polling (atelier_devtools/local/longpoll.py), with aiokafka's clients
over the real protocol: a fetch is answered when a record arrives, not when its wait runs out."""

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.fetch import FetchRequest_v4

from atelier_devtools.local.broker import MockKafkaCluster
from atelier_devtools.local.longpoll import LongPolling

pytestmark = pytest.mark.service

WAIT_MS = 5000  # The consumer's fetch wait: long, so that answering early shows.


@dataclass
class Relayed:
    relay: LongPolling
    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer


@pytest.fixture
async def relayed(request: pytest.FixtureRequest) -> AsyncIterator[Relayed]:
    """A one-broker cluster behind its relay, a topic, a producer and a consumer that has joined
    (fetching with a wait of WAIT_MS, or of the test's parameter)."""
    cluster = MockKafkaCluster(brokers=1)
    relay = LongPolling(cluster.listeners)
    try:
        (port,) = relay.start()
        cluster.advertise(1, "127.0.0.1", port)
        cluster.create_topics(["events"], 2)
        bootstrap = f"127.0.0.1:{port}"
        wait_ms = getattr(request, "param", WAIT_MS)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        consumer = AIOKafkaConsumer(
            "events", bootstrap_servers=bootstrap, group_id="readers", fetch_max_wait_ms=wait_ms
        )
        try:
            await producer.start()
            await consumer.start()
            deadline = time.monotonic() + 30
            while not consumer.assignment():
                assert time.monotonic() < deadline, "the consumer never joined"
                await asyncio.sleep(0.1)
            await consumer.seek_to_end()
            yield Relayed(relay, producer, consumer)
        finally:
            await consumer.stop()
            await producer.stop()
    finally:
        relay.stop()
        cluster.close()


async def test_a_fetch_is_answered_when_a_record_arrives(relayed: Relayed) -> None:
    """Regression: the mock holds a fetch that finds nothing for its whole wait, even when a record
    arrives meanwhile, so each hop of the local pipeline cost up to its consumer's fetch wait."""
    await asyncio.sleep(1.0)  # The consumer's fetch is held by now; the mock alone answers in 4 s.
    sent = time.monotonic()
    await relayed.producer.send_and_wait("events", b"hello", key=b"a")
    batches = await relayed.consumer.getmany(timeout_ms=10_000)
    waited = time.monotonic() - sent
    assert [record.value for records in batches.values() for record in records] == [b"hello"]
    assert waited < 2.0, waited


@pytest.mark.parametrize("relayed", [1000], indirect=True)
async def test_an_idle_consumer_costs_one_mock_fetch_per_wait(relayed: Relayed) -> None:
    """A fetch whose wait ran out with nothing produced is answered as it stands, not asked again."""
    await asyncio.sleep(1.0)
    asked = relayed.relay.fetches
    await asyncio.sleep(5.5)  # Five or six waits of 1 s; asking twice per wait would make 10-12.
    assert relayed.relay.fetches - asked <= 7


async def test_stopping_with_a_fetch_held_ends_its_connection() -> None:
    cluster = MockKafkaCluster(brokers=1)
    relay = LongPolling(cluster.listeners)
    try:
        (port,) = relay.start()
        cluster.create_topics(["events"], 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = FetchRequest_v4(-1, 60_000, 1, 1 << 20, 0, [("events", [(0, 0, 1 << 20)])]).encode()
        request = struct.pack(">hhih", 1, 4, 7, 4) + b"test" + body  # Fetch v4, correlation id 7, client "test".
        writer.write(struct.pack(">i", len(request)) + request)
        await writer.drain()
        await asyncio.sleep(1.0)  # Held: a minute's wait, nothing produced.
        began = time.monotonic()
        relay.stop()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # Closed, unanswered.
        assert time.monotonic() - began < 5
        writer.close()
    finally:
        relay.stop()
        cluster.close()


async def test_every_record_arrives_in_order(relayed: Relayed) -> None:
    for batch in range(4):
        for index in range(50):
            await relayed.producer.send("events", f"{batch}-{index}".encode(), key=b"one-key")
        await relayed.producer.flush()
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < 200:
        assert time.monotonic() < deadline, f"{len(values)} of 200 arrived"
        for records in (await relayed.consumer.getmany(timeout_ms=1000)).values():
            values.extend(record.value for record in records)
    assert values == [f"{batch}-{index}".encode() for batch in range(4) for index in range(50)]
