"""Webhook delivery to a real local HTTP receiver: one signed attempt at a time, each failure scheduled
on the next retry tier, delivered or given up (dead-lettered) in the end, never raising otherwise."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from atelier_exporter.deliveries import PUBLISHES, WebhookDeliveries, WebhookUndeliverable
from atelier_exporter.webhook import attempt, verify
from atelier_shared import BrandBook, events, topics
from atelier_shared.runtime.retrying import Abandoned, interruptible
from tests.web import answering_posts


@dataclass
class Receiver:
    url: str
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver("", [503, 200])

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        return web.Response(status=state.answers.pop(0) if state.answers else 200)

    async with answering_posts("/hook", hook) as url:
        state.url = f"{url}/hook"
        yield state


async def test_one_signed_attempt_reports_a_server_error_then_succeeds(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        failed = await attempt(session, receiver.url, b"s3cret", "asset.exported", "a1:m@1:render", {"asset": "a1"})
        delivered = await attempt(session, receiver.url, b"s3cret", "asset.exported", "a1:m@1:render", {"asset": "a1"})
    assert (failed.status_code, failed.error) == (503, "HTTP 503")
    assert (delivered.status_code, delivered.error) == (200, "")
    headers, body = receiver.received[-1]
    assert verify(b"s3cret", headers["X-Atelier-Timestamp"], body, headers["X-Atelier-Signature"])
    assert headers["X-Atelier-Delivery"] == "a1:m@1:render" and headers["X-Atelier-Event"] == "asset.exported"
    assert json.loads(body) == {"type": "asset.exported", "data": {"asset": "a1"}}


async def test_a_redirect_is_a_failed_attempt_not_followed() -> None:
    """Regression: aiohttp followed redirects, so the signed body went wherever a 307 pointed and the
    answer there counted as delivered (a 301-303 became a GET without the body, its 200 "delivered"
    too); and the report showed the URL with its query, where receivers put their tokens."""
    posted: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        posted.append(request.query_string)
        return web.Response(status=200 if "moved" in request.query else 307, headers={"Location": "/hook?moved=1"})

    async with answering_posts("/hook", hook) as url, aiohttp.ClientSession() as session:
        result = await attempt(session, f"{url}/hook?token=s3cret", b"k", "asset.exported", "a1:m@1:render", {})
    assert posted == ["token=s3cret"]
    assert result.status_code == 307 and result.error.startswith("HTTP 307: redirects are not followed")
    assert result.url == f"{url}/hook" and "s3cret" not in str(result)


async def test_an_unreachable_receiver_is_reported_not_raised() -> None:
    async with aiohttp.ClientSession() as session:
        result = await attempt(session, "http://127.0.0.1:9/hook", b"k", "asset.exported", "d", {}, timeout_s=1)
    assert result.status_code == 0 and "Connect" in result.error


def brands_with_webhook(folder: Path, url: str) -> BrandBook:
    guidelines = yaml.safe_load((Path(__file__).parents[3] / "deploy" / "brands" / "acme.yaml").read_text())
    guidelines["webhook"] = {"url": url, "secret_env": "ACME_WEBHOOK_SECRET"}
    (folder / "acme.yaml").write_text(yaml.safe_dump(guidelines))
    return BrandBook.load(folder)


def exported(asset_id: str = "a1", age_s: float = 0.0) -> events.AssetExported:
    made = events.AssetExported(asset=events.AssetHeader(asset_id=asset_id, brand="acme"), model="brush-quality@2")
    made.asset.timeline.exported_at.FromNanoseconds(int((time.time() - age_s) * 1e9))
    return made


async def deliveries(brands: BrandBook, give_up_s: float = 3600.0) -> WebhookDeliveries:
    made = WebhookDeliveries(brands, {"acme": b"k"}, (0.05, 0.1, 0.2), give_up_s, timeout_s=2.0)
    await made.start()
    return made


async def test_failures_move_down_the_retry_tiers_until_delivered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answers[:] = [500, 502, 503, 504, 200]
    sender = await deliveries(brands_with_webhook(tmp_path, receiver.url))
    try:
        outcome = await sender.first(exported())
        tiers = []
        while True:
            assert outcome is not None
            report = outcome[0]
            assert isinstance(report, events.WebhookReported)
            if report.delivered:
                break
            report, task = outcome
            assert isinstance(task, events.WebhookRetryScheduled) and report.next_attempt_at == task.due_at
            assert PUBLISHES.choose(task) is topics.WEBHOOK_RETRIES[task.retry_tier]
            tiers.append(task.retry_tier)
            with interruptible(asyncio.Event()):  # As the consumer loop runs handlers.
                outcome = await sender.retry(task)
            assert time.time() * 1000 >= events.timestamp_ms(task.due_at)
    finally:
        await sender.stop()
    assert tiers == [0, 1, 2, 2]
    assert (report.delivery.attempts, report.delivery.status_code, report.delivery_id) == (
        5,
        200,
        "a1:brush-quality@2:render",
    )
    assert PUBLISHES.choose(report) is topics.WEBHOOKS
    assert {headers["X-Atelier-Delivery"] for headers, _ in receiver.received} == {"a1:brush-quality@2:render"}


async def test_a_delivery_failing_past_the_give_up_age_is_dead_lettered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answers[:] = [500] * 10
    sender = await deliveries(brands_with_webhook(tmp_path, receiver.url), give_up_s=0.0001)
    try:
        with pytest.raises(WebhookUndeliverable, match="failed 1 times") as raised:
            await sender.first(exported("a2"))
    finally:
        await sender.stop()
    assert (raised.value.asset_id, raised.value.brand) == ("a2", "acme")


async def test_an_export_older_than_the_give_up_age_owes_nothing(receiver: Receiver, tmp_path: Path) -> None:
    """A new webhook group reads `exported` from its start: exports older than any delivery is owed
    for (before an upgrade, delivered by the old inline code) must not be sent again."""
    sender = await deliveries(brands_with_webhook(tmp_path, receiver.url), give_up_s=3600.0)
    try:
        assert await sender.first(exported("old", age_s=7200.0)) is None
        assert await sender.first(exported("new", age_s=60.0)) is not None
    finally:
        await sender.stop()
    assert [headers["X-Atelier-Delivery"] for headers, _ in receiver.received] == ["new:brush-quality@2:render"]


async def test_a_brand_without_a_webhook_owes_nothing(tmp_path: Path) -> None:
    sender = await deliveries(BrandBook.load(Path(__file__).parents[3] / "deploy" / "brands"))
    try:
        assert await sender.first(exported()) is None
    finally:
        await sender.stop()


async def test_a_stop_or_rebalance_while_a_retry_waits_abandons_it_uncommitted(tmp_path: Path) -> None:
    """A retry waiting for its due time must not hold a stopping exporter, or a rebalance of its
    group, for up to half an hour."""
    interrupt = asyncio.Event()
    sender = WebhookDeliveries(
        brands_with_webhook(tmp_path, "http://127.0.0.1:9/hook"), {"acme": b"k"}, (60, 60, 60), 3600, 1
    )
    task = events.WebhookRetryScheduled(asset_id="a3", exported=exported("a3"), attempts=1)
    task.due_at.FromSeconds(int(time.time()) + 3600)
    with interruptible(interrupt):
        waiting = asyncio.create_task(sender.retry(task))
    await asyncio.sleep(0.05)
    interrupt.set()
    with pytest.raises(Abandoned):
        await asyncio.wait_for(waiting, 5)
