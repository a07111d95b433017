"""The studio's routes on the uploader, with the status service, against the embedded broker: the
live stream (GET /v1/events) delivers each stage change once and in order to every listener of the
brand and nothing of one brand to another's listeners; the page ships inside the package."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from atelier_shared import EventProducer, events, topics
from atelier_shared.runtime.producer import Outgoing
from tests.conftest import Deployment, jpeg_bytes
from tests.service.api import RunningApi, running_api

pytestmark = pytest.mark.service

STAGES = ["uploaded", "tagged", "routed", "stylized", "exported"]


class Listener:
    """One client of the stream: every event it received, in order."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []  # (id, event, data)
        self.connected = asyncio.Event()
        self._task = asyncio.create_task(self._read(session, url))

    async def _read(self, session: aiohttp.ClientSession, url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with session.get(url, timeout=timeout) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            block: dict[str, str] = {}
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line:
                    field, _, value = line.partition(": ")
                    block[field] = value
                    continue
                if "data" in block:
                    self.events.append((block.get("id", ""), block["event"], json.loads(block["data"])))
                    self.connected.set()
                block = {}

    def statuses(self, asset_id: str) -> list[tuple[str, str]]:
        """(id, stage) of each status event of one asset."""
        return [
            (id_, data["stage"])
            for id_, event, data in self.events
            if event == "status" and data["asset_id"] == asset_id
        ]

    def brands(self) -> set[str]:
        return {data["brand"] for _, event, data in self.events if event == "status"}

    async def snapshot(self, timeout_s: float = 30.0) -> None:
        """Wait for the stream's first event; a refused or broken stream fails here, with its cause."""
        connected = asyncio.create_task(self.connected.wait())
        await asyncio.wait([connected, self._task], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        if self._task.done():
            self._task.result()  # Raises what ended it.
            raise AssertionError("the stream ended before its snapshot")
        assert self.connected.is_set(), f"no snapshot within {timeout_s} s"

    async def ended(self, timeout_s: float) -> None:
        """Wait for the server to end the stream."""
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until(check: Any, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[RunningApi]:
    async with running_api(deployment) as running:
        yield running


async def submit(running: RunningApi, brand: str, reference: str = "") -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("tier", "preview")
    form.add_field("reference", reference or f"studio/test/{brand}.jpg")
    form.add_field("file", jpeg_bytes(64, 48), filename=f"{brand}.jpg")
    async with running.session(brand) as session, session.post(f"{running.url}/v1/assets", data=form) as response:
        assert response.status == 202, await response.text()
        return await response.json()  # type: ignore[no-any-return]


def stage_events(asset_id: str, brand: str) -> list[Outgoing]:
    """What the tagger, router, stylizer and exporter publish for a preview, in order, each stamped."""
    header = events.AssetHeader(asset_id=asset_id, brand=brand, tier=events.TIER_PREVIEW)
    route = events.RouteDecision(style="tiles", model_tier=events.MODEL_TIER_FAST, reason="test")
    stages = (
        ("tagged_at", lambda: Outgoing(topics.TAGGED, events.AssetTagged(asset=header, tags=events.Tags()))),
        ("routed_at", lambda: Outgoing(topics.STYLIZE_PREVIEW, events.StyleRequested(asset=header, route=route))),
        ("stylized_at", lambda: Outgoing(topics.STYLIZED, events.AssetStylized(asset=header, route=route))),
        ("exported_at", lambda: Outgoing(topics.EXPORTED, events.AssetExported(asset=header, route=route))),
    )
    published = []
    for stamp, event in stages:
        getattr(header.timeline, stamp).CopyFrom(events.now_timestamp())
        published.append(event())  # Each event copies the header as it is now.
    return published


async def test_each_stage_change_reaches_every_listener_of_the_brand_once_in_order(api: RunningApi) -> None:
    settings = api.settings
    producer = EventProducer(settings.kafka_options(), "test", settings.topics)
    await producer.start()
    sessions = {brand: api.session(brand) for brand in ("acme", "lumen")}
    listeners: list[Listener] = []
    try:
        acme = [Listener(sessions["acme"], f"{api.url}/v1/events") for _ in range(2)]
        lumen = Listener(sessions["lumen"], f"{api.url}/v1/events")
        listeners = [*acme, lumen]
        for listener in listeners:
            await listener.snapshot()

        uploaded = await submit(api, "acme")
        asset_id = uploaded["asset_id"]
        await until(lambda: all(listener.statuses(asset_id) for listener in acme))
        published = stage_events(asset_id, "acme")
        for step, outgoing in enumerate(published, start=2):
            await producer.send([outgoing])
            await until(lambda step=step: all(len(listener.statuses(asset_id)) >= step for listener in acme))
        await producer.send([published[-1]])  # Redelivered: it changes nothing, so it is no news.
        # Then a change on the same topic and partition, so folded after the redelivery: a re-render.
        rerender = events.AssetExported()
        rerender.CopyFrom(published[-1].event)
        rerender.route.rerender = True
        rerender.asset.timeline.exported_at.CopyFrom(events.now_timestamp())
        await producer.send([Outgoing(topics.EXPORTED, rerender)])
        await until(lambda: all(len(listener.statuses(asset_id)) >= len(STAGES) + 1 for listener in acme))
        other = await submit(api, "lumen")
        await until(lambda: bool(lumen.statuses(other["asset_id"])))

        first, second = (listener.statuses(asset_id) for listener in acme)
        assert [stage for _, stage in first] == [*STAGES, "exported"]  # The redelivery made no event.
        assert [data.get("upgraded") for _, event, data in acme[0].events if event == "status"][-2:] == [False, True]
        assert first == second  # The same events, with the same ids, to both.
        ids = [int(id_) for id_, _ in first]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert lumen.brands() == {"lumen"} and not lumen.statuses(asset_id)
        assert all(listener.brands() == {"acme"} for listener in acme)
    finally:
        for listener in listeners:
            await listener.close()
        for session in sessions.values():
            await session.close()
        await producer.stop()


async def test_a_reconnecting_listener_starts_from_the_brands_recent_assets(api: RunningApi) -> None:
    """The snapshot a stream starts with is the brand's recent assets, newest first; each keeps the
    caller's reference as its source (how the studio finds its upload's name again after a reload)."""
    async with api.session("acme") as session:
        bad = aiohttp.FormData()
        bad.add_field("reference", "studio/x/\x1b[31mred.jpg")
        bad.add_field("file", jpeg_bytes(64, 48), filename="red.jpg")
        async with session.post(f"{api.url}/v1/assets", data=bad) as response:
            assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_reference"
    first = await submit(api, "acme")
    # A file name as macOS writes a screenshot's (a narrow no-break space): text, not a control character.
    second = await submit(api, "acme", reference="studio/test/Screenshot 9.41.22\u202fAM.png")
    await submit(api, "lumen")
    async with api.session("acme") as session:
        recent: list[str] = []
        for _ in range(100):  # The view folds the uploads within moments.
            async with session.get(f"{api.url}/v1/assets?limit=10") as response:
                assert response.status == 200
                recent = [asset["asset_id"] for asset in (await response.json())["assets"]]
            if len(recent) == 2:
                break
            await asyncio.sleep(0.1)
        assert recent == [second["asset_id"], first["asset_id"]]  # Newest first, acme's only.
        listener = Listener(session, f"{api.url}/v1/events?limit=1")
        try:
            await listener.snapshot()
            _, event, data = listener.events[0]
            assert event == "snapshot" and [asset["asset_id"] for asset in data["assets"]] == [second["asset_id"]]
            assert data["assets"][0]["source_uri"] == "studio/test/Screenshot 9.41.22\u202fAM.png"
        finally:
            await listener.close()


async def test_a_revoked_keys_open_stream_ends_at_the_next_key_refresh(api: RunningApi) -> None:
    """Regression: a key was checked only when its stream opened, so a leaked key that was revoked
    went on receiving every status change of the brand, with presigned links, for as long as its
    connection lasted."""
    key_id = api.keys["acme"].split("_")[1]
    async with api.session("acme") as session:
        listener = Listener(session, f"{api.url}/v1/events")
        try:
            await listener.snapshot()
            assert await api.key_store.revoke(key_id)
            await listener.ended(timeout_s=10)  # Keys refresh every 0.2 s here.
            async with session.get(f"{api.url}/v1/events") as response:
                assert response.status == 401
        finally:
            await listener.close()


async def test_the_page_ships_with_the_uploader_and_the_data_stays_behind_the_key(api: RunningApi) -> None:
    """Everything the page loads comes from the API's own origin (no CDN), under a strict CSP, and
    without a key: the page holds no data until it signs in; a key streams only its own brand."""
    async with api.session(None) as session:
        async with session.get(f"{api.url}/", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/studio/"
        async with session.get(f"{api.url}/studio/") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "script-src" not in policy
        references = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert {"studio.js", "studio.css", "favicon.svg"} <= set(references)
        for reference in references:
            assert "//" not in reference, reference
            async with session.get(f"{api.url}/studio/{reference}") as response:
                assert response.status == 200, reference
        for missing in ("nothing.js", "..%2Fstudio.js", "%2E%2E%2Fapi.css", "..%2F..%2Fstudio.py", "index.html.bak"):
            async with session.get(f"{api.url}/studio/{missing}") as response:
                assert response.status == 404, missing
        async with session.get(f"{api.url}/v1/assets") as response:
            assert response.status == 401  # The data stays behind the key.
    async with api.session("acme") as session, session.get(f"{api.url}/v1/events?brand=lumen") as response:
        assert response.status == 403
    async with api.session() as session:
        async with session.get(f"{api.url}/v1/events") as response:
            assert response.status == 400  # An admin key names the brand,
        for path in ("/v1/events", "/v1/assets"):  # one that exists (regression: a 503 from the contract test).
            async with session.get(f"{api.url}{path}?brand=%01nobody") as response:
                assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    # Regression (the contract test): a path parameter holding a "/" matched no route, and aiohttp's
    # plain-text 404 was not the JSON error body the contract declares for every error.
    async with api.session("acme") as session:
        for path in ("/v1/assets/a%2Fb/trace", "/v1/brands/a%2Fb", "/v1/nothing"):
            async with session.get(f"{api.url}{path}") as response:
                assert response.status == 404 and response.content_type == "application/json", path
                assert (await response.json())["error"]["code"] == "not_found"
        async with session.delete(f"{api.url}/v1/brands") as response:
            assert response.status == 405 and "GET" in response.headers["Allow"]
            assert (await response.json())["error"]["code"] == "method_not_allowed"
