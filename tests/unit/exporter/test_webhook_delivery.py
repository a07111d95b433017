"""Webhook delivery to a real local HTTP receiver: signed, retried on 5xx, never raising."""

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from atelier_exporter.webhook import deliver, verify


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]], list[int]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    answers = [503, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received, answers
    await runner.cleanup()


async def test_signed_delivery_is_retried_after_a_server_error(receiver) -> None:  # type: ignore[no-untyped-def]
    url, received, _ = receiver
    async with aiohttp.ClientSession() as session:
        result = await deliver(session, url, b"s3cret", "asset.exported", "a1:m@1:render", {"asset": "a1"}, attempts=3)
    assert (result.status_code, result.attempts, result.error) == (200, 2, "")
    headers, body = received[-1]
    assert verify(b"s3cret", headers["X-Atelier-Timestamp"], body, headers["X-Atelier-Signature"])
    assert headers["X-Atelier-Delivery"] == "a1:m@1:render" and headers["X-Atelier-Event"] == "asset.exported"
    assert json.loads(body) == {"type": "asset.exported", "data": {"asset": "a1"}}


async def test_an_unreachable_receiver_is_reported_not_raised() -> None:
    async with aiohttp.ClientSession() as session:
        result = await deliver(
            session, "http://127.0.0.1:9/hook", b"k", "asset.exported", "d", {}, attempts=2, timeout_s=1
        )
    assert result.attempts == 2 and result.status_code == 0 and "Connect" in result.error
