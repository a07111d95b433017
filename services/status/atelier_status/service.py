"""The status service: every topic folded into one status document per asset, served over HTTP.

It runs apart from the uploader, so reads scale apart from writes and accepting uploads never
waits for the view (which is unready while its table recovers). The uploader forwards
`GET /v1/assets/{id}` and the studio's event streams here after checking the caller's key, and asks
it for a brand's assets in flight (its quota). It is an internal service: it checks no keys, so it
is never exposed.
"""

from datetime import timedelta

from atelier_shared import ObjectStore, Service
from atelier_status.reads import Reads
from atelier_status.settings import StatusSettings
from atelier_status.view import StatusView

# How often documents past their retention are looked for.
PRUNE_INTERVAL_S = 600.0


def declare(settings: StatusSettings) -> Service:
    """The status service."""
    store = ObjectStore(settings)
    view = StatusView(settings)
    expiry = timedelta(seconds=settings.presign_expiry_s)

    async def view_ready() -> bool:
        return view.ready

    service = Service("status", settings)
    service.add(view)
    service.reads(*view.sources, by="status view")
    service.check("view", view_ready)
    Reads(view, lambda bucket, key: store.presigned_url(bucket, key, expiry)).routes(service.http.routes)
    service.http.on_stop(view.feed.close)
    if settings.status_retention_days:
        retention_s = settings.status_retention_days * 86400
        service.background("status-retention", lambda: view.keep_pruning(retention_s, PRUNE_INTERVAL_S))
    return service
