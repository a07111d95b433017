"""Kafka helpers for tests, over the real protocol: produce records, read topics, measure lag."""

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition


async def produce(
    bootstrap: str, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
) -> None:
    """Produce one record with acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout_s: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of a topic from the beginning, read until `until(records)` holds or the timeout."""
    # Without a group id, subscribing assigns every partition and commits nothing.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while not until(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records


async def partitions_of(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """Every partition of the topics, from a metadata request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [TopicPartition(item["topic"], part["partition"]) for item in described for part in item["partitions"]]


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Records on `topics` not yet committed by `group` (end offsets minus committed offsets)."""
    return sum((await partition_lags(bootstrap, group, topics)).values())


async def partition_lags(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Per partition of `topics`, the records not yet committed by `group`."""
    partitions = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return {partition: ends[partition] - (await consumer.committed(partition) or 0) for partition in partitions}
    finally:
        await consumer.stop()


def sync(coroutine: object) -> object:
    """Run a coroutine to completion from synchronous test code."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]
