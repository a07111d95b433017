"""The lag monitor's reading of a group's committed offsets, with the admin client's answers stubbed."""

from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import NoError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from atelier_router.lag import PARTITIONS_REFRESH_S, LagMonitor, pool_specs
from atelier_shared import AtelierSettings, kafka_retriable, topics

PARTITIONS = [TopicPartition("atelier.stylize.quality", 0), TopicPartition("atelier.stylize.quality", 1)]


class Admin:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def list_consumer_group_offsets(self, group: str, partitions: list[TopicPartition]) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def monitor(admin: Admin) -> LagMonitor:
    lag = LagMonitor(AtelierSettings(), pool_specs(topics.Topics()), 1, 10, 2, 1000, 10)
    lag._admin = admin  # type: ignore[assignment]
    return lag


async def test_a_complete_answer_is_the_groups_offsets() -> None:
    answer = {partition: OffsetAndMetadata(7, "") for partition in PARTITIONS}
    assert await monitor(Admin(answer))._group_offsets("g", PARTITIONS) == answer


@pytest.mark.parametrize(
    "answer", [{}, {PARTITIONS[0]: OffsetAndMetadata(7, "")}, NoError()], ids=["none", "some", "NoError"]
)
async def test_an_answer_without_every_partition_is_a_retriable_failure(answer: Any) -> None:
    """Regression: aiokafka's admin client drops OffsetFetch's top-level error (a coordinator loading
    or moving): it answered with no partitions, read as offset 0, so the whole log looked like backlog
    and the router failed over for nothing; or it raised NoError, not retriable, which ended the
    monitor. Now the sample fails retriably and the last estimate stands."""
    with pytest.raises(Exception) as raised:
        await monitor(Admin(answer))._group_offsets("g", PARTITIONS)
    assert kafka_retriable(raised.value), raised.value


class Describing:
    def __init__(self, topics: list[dict[str, Any]]) -> None:
        self.topics = topics

    async def list_topics(self) -> list[str]:
        return [item["topic"] for item in self.topics]

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [item for item in self.topics if item["topic"] in names]


async def test_a_pool_topic_that_is_not_there_stops_the_start() -> None:
    """Regression: a pool topic missing at the router's start was described with an error code and no
    partitions (or, where brokers auto-create topics, created by the describe), which the monitor took
    as a pool with no partitions: its lag read 0 for good, so the router never failed over and
    re-renders always flowed."""
    present = {"topic": "atelier.stylize.quality", "error_code": 0, "partitions": [{"partition": 0}]}
    lag = monitor(Describing([present]))  # type: ignore[arg-type]
    assert await lag._partitions_of(["atelier.stylize.quality"]) == [TopicPartition("atelier.stylize.quality", 0)]
    with pytest.raises(RuntimeError, match="topics atelier.stylize.rerender do not exist"):
        await lag._partitions_of(["atelier.stylize.quality", "atelier.stylize.rerender"])
    catching_up = {"topic": "atelier.stylize.fast", "error_code": 5, "partitions": []}  # LEADER_NOT_AVAILABLE
    lag = monitor(Describing([present, catching_up]))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="topics atelier.stylize.fast do not exist"):
        await lag._partitions_of(["atelier.stylize.quality", "atelier.stylize.fast"])


class Topics:
    """An admin client that lists and describes every topic with `count` partitions."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def list_topics(self) -> list[str]:
        return topics.Topics().all_names()

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        partitions = [{"partition": index} for index in range(self.count)]
        return [{"topic": name, "error_code": 0, "partitions": partitions} for name in names]


async def test_partitions_added_to_a_pool_topic_are_read_again() -> None:
    """Regression: the pools' partitions were read once, at start, so partitions added to
    stylize.quality to scale the pool out were left out of its lag until the router restarted: the
    router under-read the backlog, and failed over late or never."""
    now = [0.0]
    lag = LagMonitor(AtelierSettings(), pool_specs(topics.Topics()), 1, 10, 2, 1000, 10, clock=lambda: now[0])
    admin = Topics(4)
    lag._admin = admin  # type: ignore[assignment]
    await lag._read_partitions()
    quality = "atelier.stylize.quality"
    assert sum(tp.topic == quality for tp in lag._partitions["quality"]) == 4
    admin.count = 8
    now[0] += PARTITIONS_REFRESH_S - 1
    await lag._refresh_partitions()
    assert sum(tp.topic == quality for tp in lag._partitions["quality"]) == 4  # Not yet.
    now[0] += 1
    await lag._refresh_partitions()
    assert sum(tp.topic == quality for tp in lag._partitions["quality"]) == 8


class Cluster(Topics):
    """Topics of `count` partitions, every group committed at 0."""

    async def list_consumer_group_offsets(self, group: str, partitions: list[TopicPartition]) -> Any:
        return {partition: OffsetAndMetadata(0, "") for partition in partitions}


class EndOffsets:
    """End offsets all 0; `meanwhile` runs while they are read (the router routing as it waits)."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        self.meanwhile = meanwhile

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.meanwhile()
        return dict.fromkeys(partitions, 0)


class NoReports:
    async def getmany(self, timeout_ms: int = 0) -> dict[Any, Any]:
        return {}


async def test_what_is_routed_while_a_sample_is_read_still_counts_after_it() -> None:
    """Regression: a sample zeroed the counts of requests routed since the last one, including those
    routed while it waited for the offsets, which its offsets did not include: they counted nowhere
    until the next sample, and the sample could resume re-renders the last one had just paused."""
    lag = LagMonitor(AtelierSettings(), pool_specs(topics.Topics()), 1, 10, 2, 1000, 10)
    lag._admin = Cluster(4)  # type: ignore[assignment]
    lag._offsets = EndOffsets(lambda: lag.note_rerender("quality"))  # type: ignore[assignment]
    lag._stats = NoReports()  # type: ignore[assignment]
    lag.note_rerender("quality")  # Before the sample: its offsets hold this one.
    await lag.sample()
    assert lag.estimate("quality").backlog == 1  # The one routed while it was read.
