"""The router in-process against the embedded broker: the re-render gate and the lag monitor's failure modes."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from atelier_router.service import declare
from atelier_router.settings import RouterSettings
from atelier_shared import EventProducer, Outgoing, Service, events, topics
from tests.conftest import Deployment
from tests.kafka import produce, read_topic

pytestmark = pytest.mark.service


@pytest.fixture
async def router(deployment: Deployment) -> AsyncIterator[tuple[Service, RouterSettings]]:
    settings: RouterSettings = deployment.settings(  # type: ignore[assignment]
        RouterSettings, ops_port=0, lag_poll_interval_s=0.2, lag_stale_after_s=1.0, pool_report_interval_s=0.2
    )
    service = declare(settings)
    await service.start()
    try:
        yield service, settings
    finally:
        await service.stop(timeout_s=5)


async def send(settings: RouterSettings, *outgoing: Outgoing) -> None:
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    try:
        await producer.send(list(outgoing))
    finally:
        await producer.stop()


def request(asset_id: str) -> Outgoing:
    header = events.AssetHeader(asset_id=asset_id, brand="acme", tier=events.TIER_PRODUCTION)
    return Outgoing(topics.STYLIZE_QUALITY, events.StyleRequested(asset=header))


def served_degraded(asset_id: str) -> Outgoing:
    header = events.AssetHeader(asset_id=asset_id, brand="acme", tier=events.TIER_PRODUCTION)
    route = events.RouteDecision(style="tiles", model_tier=events.MODEL_TIER_FAST, degraded=True)
    return Outgoing(topics.EXPORTED, events.AssetExported(asset=header, route=route, model="tiles-fast@1"))


async def drain_quality_pool(settings: RouterSettings) -> None:
    """Do what a quality stylizer would: consume its topic and commit."""
    consumer = AIOKafkaConsumer(
        settings.topics.name(topics.STYLIZE_QUALITY),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.topics.group("stylizer-quality"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        taken = 0
        while taken < 3 and time.monotonic() < deadline:
            taken += sum(len(batch) for batch in (await consumer.getmany(timeout_ms=500)).values())
        await consumer.commit()
    finally:
        await consumer.stop()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def get(service: Service, path: str) -> tuple[int, str]:
    """(status, body) of a GET on the service's own port (without blocking its event loop)."""
    url = f"http://127.0.0.1:{service.http.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def readiness(service: Service) -> tuple[int, dict[str, bool]]:
    status, body = await get(service, "/readyz")
    return status, json.loads(body)["checks"]


async def test_re_renders_wait_paused_not_in_a_handler_and_flow_once_the_quality_pool_drains(
    router: tuple[Service, RouterSettings],
) -> None:
    """Regression: the re-render gate slept inside a handler while the quality pool was busy, holding the
    runtime's handling lock, so a rebalance (which takes that lock) stalled until capacity returned."""
    service, settings = router
    await send(settings, request("q1"), request("q2"), request("q3"))  # A backlog over the re-render limit (2).
    rerenders = service.loop("router-rerender")
    await wait_until(lambda: not rerenders.subscription.flowing.is_set())
    await send(settings, served_degraded("degraded-1"))
    await wait_until(lambda: len(rerenders.consumer.paused()) == settings.topic_partitions)
    queued = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.STYLIZE_RERENDER), until=lambda f: False, timeout_s=1.5
    )
    assert queued == []
    # A rebalance takes the handling lock: nothing may hold it while the gate is closed.
    await asyncio.wait_for(rerenders.on_revoked(set()), 5)

    await drain_quality_pool(settings)
    [record] = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.STYLIZE_RERENDER), until=lambda f: len(f) >= 1
    )
    rerender = events.StyleRequested.FromString(record.value)
    assert rerender.asset.asset_id == "degraded-1" and rerender.route.rerender


async def test_an_unreadable_pool_report_is_skipped_and_the_monitor_keeps_reading(
    router: tuple[Service, RouterSettings],
) -> None:
    """Regression: one malformed pool-stats record killed the lag monitor's task silently, freezing every estimate."""
    service, settings = router
    stats = settings.topics.name(topics.POOL_STATS)
    await produce(settings.kafka_bootstrap, stats, b"quality", b"\xff\xff not a report")
    report = events.PoolReported(pool="quality", instance="test", item_service_ms=4321.0)
    await produce(settings.kafka_bootstrap, stats, b"quality", report.SerializeToString())
    started = time.monotonic()
    while time.monotonic() - started < 3:  # Several samples past both records.
        await asyncio.sleep(0.2)
    assert not service.crashed.is_set()
    assert (await readiness(service))[0] == 200
    gauge = 'atelier_pool_service_seconds{pool="quality"}'
    _, metrics = await get(service, "/metrics")
    line = next(line for line in metrics.splitlines() if line.startswith(gauge))
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(4.321)


async def test_a_stale_lag_reading_makes_the_router_unready_and_keeps_production_on_quality(
    router: tuple[Service, RouterSettings], deployment: Deployment
) -> None:
    """Regression: a monitor that stopped reading left readiness true while fail-over decided on stale data;
    and re-renders kept flowing on a stale reading (the gate was re-assessed only on a good sample)."""
    service, settings = router
    assert await readiness(service) == (200, {"kafka": True, "lag_reading": True})
    gate = service.loop("router-rerender").subscription.flowing
    await wait_until(gate.is_set)  # An idle quality pool: room for re-renders.
    cluster = deployment.infra.cluster
    for broker in (1, 2, 3):
        cluster.broker_down(broker)
    try:
        await asyncio.sleep(3.0)  # Three times the staleness limit without a successful sample.
        status, checks = await readiness(service)
        assert status == 503 and checks["lag_reading"] is False
        await wait_until(lambda: not gate.is_set())
    finally:
        for broker in (1, 2, 3):
            cluster.broker_up(broker)
    deadline = time.monotonic() + 60
    while (await readiness(service))[0] != 200:
        assert time.monotonic() < deadline, "the router did not become ready again after the brokers came back"
        await asyncio.sleep(0.5)
