"""The status service's reads: an asset's status, a brand's assets in flight and recent assets, and a
live stream of a brand's changes (server-sent events), each document with presigned object URLs."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from atelier_shared.runtime.http import EVENT_STREAM_HEADERS
from atelier_shared.status import with_urls
from atelier_status.feed import Listener
from atelier_status.view import StatusView


def _not_found(asset_id: str) -> web.Response:
    message = f"no asset {asset_id!r} (yet): check the id, or retry shortly"
    return web.json_response({"error": {"code": "not_found", "message": message}}, status=404)


def _not_ready() -> web.Response:
    message = "the status view is recovering its table; retry shortly"
    return web.json_response({"error": {"code": "not_ready", "message": message}}, status=503)


def _limit(request: web.Request, default: int) -> int:
    try:
        return max(0, int(request.query.get("limit", str(default))))
    except ValueError:
        return default


def server_sent(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One server-sent event (the data on one line: JSON has no raw newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# An event stream's comment line this often, so proxies keep it open and a gone client is noticed.
KEEPALIVE_S = 15.0


async def next_change(listener: Listener, response: web.StreamResponse) -> tuple[int, dict[str, Any]] | None:
    """The listener's next change, writing a keepalive comment every KEEPALIVE_S meanwhile."""
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                return await listener.next()
        except TimeoutError:
            await response.write(b": keepalive\n\n")


class Reads:
    """The read routes over the view; `sign(bucket, key)` presigns each object's URL."""

    def __init__(self, view: StatusView, sign: Callable[[str, str], str]) -> None:
        self._view = view
        self._sign = sign

    def routes(self, routes: web.RouteTableDef) -> None:
        """Add the routes."""
        routes.get("/v1/assets/{asset_id}")(self.get_status)
        routes.get("/v1/brands/{brand}/open")(self.open_assets)
        routes.get("/v1/brands/{brand}/assets")(self.recent_assets)
        routes.get("/v1/brands/{brand}/events")(self.brand_events)

    def _shown(self, status: dict[str, Any]) -> dict[str, Any]:
        return with_urls(status, self._sign)

    async def get_status(self, request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: stage, timeline, tags, route, outputs with presigned URLs, failure."""
        asset_id = request.match_info["asset_id"]
        status = self._view.get(asset_id)
        if status is None:
            return _not_found(asset_id)
        return web.json_response(self._shown(status))

    async def open_assets(self, request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}/open?limit=N: how many of the brand's assets are in flight, and up to N ids."""
        open_ids = self._view.open_assets(request.match_info["brand"])
        if open_ids is None:
            return _not_ready()
        return web.json_response({"open": len(open_ids), "asset_ids": sorted(open_ids)[: _limit(request, 0)]})

    async def recent_assets(self, request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}/assets?limit=N: the brand's N most recent assets, newest first."""
        recent = self._view.recent(request.match_info["brand"], _limit(request, 50))
        if recent is None:
            return _not_ready()
        return web.json_response({"assets": [self._shown(status) for status in recent]})

    async def brand_events(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/brands/{brand}/events?limit=N: a server-sent event stream of the brand's assets: a
        `snapshot` of the N most recent, then a `status` event each time one of its assets changes."""
        brand = request.match_info["brand"]
        with self._view.feed.listen(brand) as listener:  # Before the snapshot: no change falls in between.
            recent = self._view.recent(brand, _limit(request, 50))
            if recent is None:
                return _not_ready()
            response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
            await response.prepare(request)
            try:
                await response.write(server_sent("snapshot", {"assets": [self._shown(status) for status in recent]}))
                while (change := await next_change(listener, response)) is not None:
                    sequence, status = change
                    await response.write(server_sent("status", self._shown(status), sequence))
            except ConnectionResetError:
                pass  # The reader went away (a tab closed, a reload): nothing to tell it.
        return response
