"""The status service: every topic folded into one status document per asset, served over HTTP.

It runs apart from the uploader, so reads scale apart from writes and accepting uploads never
waits for the view (which is unready while its table recovers). The uploader forwards
`GET /v1/assets/{id}` here after checking the caller's key, and asks it for a brand's assets in
flight (its quota). It is an internal service: it checks no keys, so it is never exposed.
"""

from datetime import timedelta

from aiohttp import web

from atelier_shared import ObjectStore, Service
from atelier_shared.status import with_urls
from atelier_status.settings import StatusSettings
from atelier_status.view import StatusView


def _not_found(asset_id: str) -> web.Response:
    message = f"no asset {asset_id!r} (yet): check the id, or retry shortly"
    return web.json_response({"error": {"code": "not_found", "message": message}}, status=404)


def declare(settings: StatusSettings) -> Service:
    """The status service."""
    store = ObjectStore(settings)
    view = StatusView(settings)
    expiry = timedelta(seconds=settings.presign_expiry_s)

    async def get_status(request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: stage, timeline, tags, route, outputs with presigned URLs, failure."""
        asset_id = request.match_info["asset_id"]
        status = view.get(asset_id)
        if status is None:
            return _not_found(asset_id)
        return web.json_response(with_urls(status, lambda bucket, key: store.presigned_url(bucket, key, expiry)))

    async def open_assets(request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}/open?limit=N: how many of the brand's assets are in flight, and up to N ids."""
        try:
            limit = max(0, int(request.query.get("limit", "0")))
        except ValueError:
            limit = 0
        open_ids = view.open_assets(request.match_info["brand"])
        if open_ids is None:
            message = "the status view is recovering its table; retry shortly"
            return web.json_response({"error": {"code": "not_ready", "message": message}}, status=503)
        return web.json_response({"open": len(open_ids), "asset_ids": sorted(open_ids)[:limit]})

    async def view_ready() -> bool:
        return view.ready

    service = Service("status", settings)
    service.add(view)
    service.reads(*view.sources, by="status view")
    service.check("view", view_ready)
    service.http.routes.get("/v1/assets/{asset_id}")(get_status)
    service.http.routes.get("/v1/brands/{brand}/open")(open_assets)
    return service
