"""The status service: every topic folded into one status document per asset, served over HTTP.

It runs apart from the uploader, so reads scale apart from writes and accepting uploads never
waits for the view (which is unready while its table recovers). The uploader forwards
`GET /v1/assets/{id}` here after checking the caller's key, and asks it for a brand's assets in
flight (its quota). It is an internal service: it checks no keys, so it is never exposed.
"""

import asyncio
import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from atelier_shared import ObjectStore, Service
from atelier_shared.status import with_urls
from atelier_status.settings import StatusSettings
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


def declare(settings: StatusSettings) -> Service:
    """The status service."""
    store = ObjectStore(settings)
    view = StatusView(settings)
    expiry = timedelta(seconds=settings.presign_expiry_s)

    def shown(status: dict[str, Any]) -> dict[str, Any]:
        return with_urls(status, lambda bucket, key: store.presigned_url(bucket, key, expiry))

    async def get_status(request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: stage, timeline, tags, route, outputs with presigned URLs, failure."""
        asset_id = request.match_info["asset_id"]
        status = view.get(asset_id)
        if status is None:
            return _not_found(asset_id)
        return web.json_response(shown(status))

    async def open_assets(request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}/open?limit=N: how many of the brand's assets are in flight, and up to N ids."""
        open_ids = view.open_assets(request.match_info["brand"])
        if open_ids is None:
            return _not_ready()
        return web.json_response({"open": len(open_ids), "asset_ids": sorted(open_ids)[: _limit(request, 0)]})

    async def recent_assets(request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}/assets?limit=N: the brand's N most recent assets, newest first."""
        recent = view.recent(request.match_info["brand"], _limit(request, 50))
        if recent is None:
            return _not_ready()
        return web.json_response({"assets": [shown(status) for status in recent]})

    async def brand_events(request: web.Request) -> web.StreamResponse:
        """GET /v1/brands/{brand}/events?limit=N: a server-sent event stream of the brand's assets: a
        `snapshot` of the N most recent, then a `status` event each time one of its assets changes."""
        brand = request.match_info["brand"]
        with view.feed.listen(brand) as listener:  # Before the snapshot: no change falls in between.
            recent = view.recent(brand, _limit(request, 50))
            if recent is None:
                return _not_ready()
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
            )
            await response.prepare(request)
            await response.write(server_sent("snapshot", {"assets": [shown(status) for status in recent]}))
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        change = await listener.next()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if change is None:
                    break
                sequence, status = change
                await response.write(server_sent("status", shown(status), sequence))
        return response

    async def view_ready() -> bool:
        return view.ready

    service = Service("status", settings)
    service.add(view)
    service.reads(*view.sources, by="status view")
    service.check("view", view_ready)
    service.http.routes.get("/v1/assets/{asset_id}")(get_status)
    service.http.routes.get("/v1/brands/{brand}/open")(open_assets)
    service.http.routes.get("/v1/brands/{brand}/assets")(recent_assets)
    service.http.routes.get("/v1/brands/{brand}/events")(brand_events)
    service.http.on_stop(view.feed.close)
    return service
