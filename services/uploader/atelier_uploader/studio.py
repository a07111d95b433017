"""The studio: the web page artists use (served from this package), and the reads it needs.

The page (`/studio/`, files in `atelier_uploader/studio/`) signs in with a brand key, uploads, and
follows the brand's assets live. Its routes, each behind the key check and for the caller's brand
only: the brand's profile (styles, tiers, latency targets), its recent assets, a server-sent event
stream of their changes (forwarded from the status service, which folds them), and an asset's trace
(read from Jaeger's query service, or the local trace sink, which answers the same way).
"""

import asyncio
from collections import Counter, defaultdict
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from atelier_shared import BrandBook, UnknownBrand, get_logger
from atelier_shared.runtime.http import EVENT_STREAM_HEADERS
from atelier_uploader import contract
from atelier_uploader.access import error, principal
from atelier_uploader.api import UNANSWERED, Api, BadRequest, acting_brand
from atelier_uploader.keys import KeyRing

log = get_logger(__name__)

PAGE = resources.files("atelier_uploader") / "studio"
# A stream carries a keepalive every 15 s: silence this long means the status service is gone.
STREAM_SILENCE_S = 45.0
# A client that has not taken an event within this long is gone (or stalled): its stream ends.
STREAM_WRITE_S = 30.0
# Open streams per brand on one replica (each holds a connection here and at the status service).
STREAMS_PER_BRAND = 64
# Served with the page: scripts and styles from this origin only, images from the object store too.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data: http: https:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


_PAGE_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@cache
def _page_file(name: str) -> bytes:
    """A file of the page, read once (it ships inside the package)."""
    return (PAGE / name).read_bytes()


def _limit(request: web.Request) -> int:
    try:
        return min(200, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        return 50


class Studio:
    """The studio's routes."""

    def __init__(
        self,
        api: Api,
        brands: BrandBook,
        keys: KeyRing,
        status_url: str,
        trace_query_url: str = "",
        trace_ui_url: str = "",
    ) -> None:
        self._api = api
        self._brands = brands
        self._keys = keys
        self._status_url = status_url
        self._trace_query_url = trace_query_url
        self._trace_ui_url = trace_ui_url
        # Short reads (recent assets, traces) and long-lived streams use their own connection pools,
        # so open streams never hold up a read.
        self._session: aiohttp.ClientSession | None = None
        self._stream_session: aiohttp.ClientSession | None = None
        self._streams: dict[str, set[aiohttp.ClientResponse]] = defaultdict(set)
        self._opening: Counter[str] = Counter()
        self._stopping = False

    async def start(self) -> None:
        """Open the sessions for reads and for streams."""
        self._session = aiohttp.ClientSession()
        self._stream_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def end_streams(self) -> None:
        """End every forwarded stream, and refuse new ones (the server is stopping)."""
        self._stopping = True
        for upstreams in self._streams.values():
            for upstream in list(upstreams):
                upstream.close()

    async def stop(self) -> None:
        """Close the sessions."""
        await self.end_streams()
        for session in (self._session, self._stream_session):
            if session is not None:
                await session.close()
        self._session = self._stream_session = None

    def operations(self) -> list[contract.Operation]:
        """The studio's API routes, as the contract describes them."""
        brand_parameter = contract.parameter("brand", "query", "with an admin key: the brand")
        limit = contract.parameter("limit", "query", "how many recent assets (default 50, at most 200)")
        asset_id = contract.parameter("asset_id", "path", "the asset", required=True)
        return [
            contract.Operation(
                "GET",
                "/v1/brands/{brand}",
                self.brand_profile,
                "A brand's styles, tiers and latency targets",
                (200, contract.BrandProfile),
                (401, 404),
                [contract.parameter("brand", "path", "the brand", required=True)],
            ),
            contract.Operation(
                "GET",
                "/v1/assets",
                self.recent_assets,
                "The brand's most recent assets, newest first, with their outcome",
                (200, contract.AssetList),
                (400, 401, 403, 404, 503),
                [brand_parameter, limit],
            ),
            contract.Operation(
                "GET",
                "/v1/events",
                self.events,
                "A live stream of the brand's assets: a snapshot, then every change (server-sent events)",
                (200, contract.StatusEvent),
                (400, 401, 403, 404, 429, 503),
                [brand_parameter, limit],
                media_type="text/event-stream",
            ),
            contract.Operation(
                "GET",
                "/v1/assets/{asset_id}/trace",
                self.trace,
                "An asset's trace across the services, as spans for a waterfall",
                (200, contract.AssetTrace),
                (401, 404, 503),
                [asset_id],
            ),
        ]

    def page(self, routes: web.RouteTableDef) -> None:
        """Serve the page at /studio/ (and send / there)."""

        async def index(_request: web.Request) -> web.StreamResponse:
            headers = {**PAGE_HEADERS, "Cache-Control": "no-cache"}
            return web.Response(body=_page_file("index.html"), content_type="text/html", headers=headers)

        async def asset(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            kind = next((kind for suffix, kind in _PAGE_TYPES.items() if name.endswith(suffix)), None)
            if kind is None or "/" in name or not (PAGE / name).is_file():
                raise web.HTTPNotFound()
            return web.Response(body=_page_file(name), headers={**PAGE_HEADERS, "Content-Type": kind})

        async def home(_request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("/studio/")

        routes.get("/")(home)
        routes.get("/studio")(home)
        routes.get("/studio/")(index)
        routes.get("/studio/{name}")(asset)

    async def brand_profile(self, request: web.Request) -> web.Response:
        """GET /v1/brands/{brand}: what the studio offers for a brand."""
        brand = request.match_info["brand"]
        try:
            guidelines = self._brands.get(brand) if principal(request).may_see(brand) else None
        except UnknownBrand:
            guidelines = None
        if guidelines is None:
            return error(404, "not_found", f"no brand {brand!r} for this key")
        profile = contract.BrandProfile(
            brand=brand,
            display_name=guidelines.display_name or brand,
            default_style=guidelines.default_style,
            styles=sorted(guidelines.allowed_styles()),
            tiers=list(guidelines.tiers),
            latency_targets_ms={str(tier): ms for tier, ms in guidelines.latency_targets_ms.items()},
        )
        return web.json_response(profile.model_dump())

    def _brand(self, request: web.Request) -> str:
        """The brand a read acts for, which must exist (an admin key may name any)."""
        brand = acting_brand(request, dict(request.query))
        try:
            self._brands.get(brand)
        except UnknownBrand as exc:
            raise BadRequest(404, "not_found", str(exc)) from exc
        return brand

    async def recent_assets(self, request: web.Request) -> web.Response:
        """GET /v1/assets: the status service's list of the brand's recent assets."""
        try:
            brand = self._brand(request)
        except BadRequest as exc:
            return error(exc.status, exc.code, str(exc))
        try:
            async with self._get(f"/v1/brands/{quote(brand, safe='')}/assets?limit={_limit(request)}") as answer:
                if answer.status != 200:
                    return _unavailable("recent assets", f"the status service answered {answer.status}")
                return web.json_response(await answer.json())
        except UNANSWERED as exc:
            return _unavailable("recent assets", exc)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/events: the status service's event stream of the brand, forwarded as it comes."""
        try:
            brand = self._brand(request)
        except BadRequest as exc:
            return error(exc.status, exc.code, str(exc))
        streams = self._streams[brand]
        if len(streams) + self._opening[brand] >= STREAMS_PER_BRAND:
            message = f"this brand has {len(streams)} live streams open here; close some (other tabs) first"
            return error(429, "too_many_streams", message, **{"Retry-After": "10"})
        path = f"/v1/brands/{quote(brand, safe='')}/events?limit={_limit(request)}"
        self._opening[brand] += 1  # Counted while it opens: requests arriving meanwhile see it.
        try:
            upstream = await self._open(path)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unavailable("event stream", exc)
        finally:
            self._opening[brand] -= 1
        streams.add(upstream)
        try:
            if self._stopping:  # end_streams ran while this one opened.
                return _unavailable("event stream", "the server is stopping")
            if upstream.status != 200:
                return _unavailable("event stream", f"the status service answered {upstream.status}")
            response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
            await response.prepare(request)
            try:
                async with asyncio.timeout(None) as revoked:  # Brought to now if the caller's key is revoked.
                    with self._keys.on_revoked(principal(request).key_id, lambda: revoked.reschedule(0)):
                        async for chunk in upstream.content.iter_any():
                            async with asyncio.timeout(STREAM_WRITE_S):
                                await response.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError, TimeoutError) as exc:
                reason = "key revoked" if revoked.expired() else exc.__class__.__name__
                log.info("event stream ended", brand=brand, reason=reason)
            return response
        finally:
            streams.discard(upstream)
            upstream.close()

    async def trace(self, request: web.Request) -> web.Response:
        """GET /v1/assets/{id}/trace: the asset's spans, from the trace store."""
        found = await self._api.lookup(principal(request), request.match_info["asset_id"])
        if isinstance(found, web.Response):
            return found
        trace_id = str(found.get("trace_id", ""))
        if not trace_id:
            return error(404, "no_trace", "this asset has no trace (it came in without one)")
        ui_url = f"{self._trace_ui_url}/trace/{trace_id}" if self._trace_ui_url else None
        if not self._trace_query_url:
            return web.json_response(contract.AssetTrace(trace_id=trace_id, spans=[], ui_url=ui_url).model_dump())
        try:
            async with self._get(f"/api/traces/{trace_id}", base=self._trace_query_url) as answer:
                if answer.status == 404:
                    return error(404, "trace_not_found", "the trace store has no spans of it yet; retry shortly")
                if answer.status != 200:
                    return _unavailable("the trace", f"the trace store answered {answer.status}")
                document = await answer.json()
        except UNANSWERED as exc:
            return _unavailable("the trace", exc)
        spans = waterfall(document, trace_id)
        return web.json_response(contract.AssetTrace(trace_id=trace_id, spans=spans, ui_url=ui_url).model_dump())

    def _get(self, path: str, base: str = "") -> Any:
        if self._session is None:
            raise RuntimeError("Studio used before start()")
        return self._session.get(f"{base or self._status_url}{path}", timeout=aiohttp.ClientTimeout(total=10))

    async def _open(self, path: str) -> aiohttp.ClientResponse:
        if self._stream_session is None:
            raise RuntimeError("Studio used before start()")
        timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=STREAM_SILENCE_S)
        return await self._stream_session.get(f"{self._status_url}{path}", timeout=timeout)


def _unavailable(what: str, reason: object) -> web.Response:
    """503 for a read whose source does not answer; the details (hosts, ports) stay in the log."""
    log.warning("studio read unavailable", read=what, reason=repr(reason))
    return error(503, "unavailable", f"{what}: not available now; retry shortly", **{"Retry-After": "2"})


def waterfall(document: dict[str, Any], trace_id: str) -> list[contract.TraceSpan]:
    """Jaeger's answer as waterfall rows: services named, times from the trace's start, in start order."""
    # Asked by id, Jaeger answers that trace (some versions write its id without leading zeros).
    traces = [t for t in document.get("data") or [] if str(t.get("traceID", "")).lstrip("0") == trace_id.lstrip("0")]
    if not traces:
        return []
    services = {pid: process.get("serviceName", "") for pid, process in traces[0].get("processes", {}).items()}
    spans = traces[0].get("spans", [])
    start = min((int(span["startTime"]) for span in spans), default=0)
    rows = [
        contract.TraceSpan(
            span_id=span["spanID"],
            parent_id=_parent(span),
            service=services.get(span.get("processID", ""), ""),
            name=span.get("operationName", ""),
            start_ms=(int(span["startTime"]) - start) / 1000,
            duration_ms=int(span.get("duration", 0)) / 1000,
            error=_failed(span),
        )
        for span in spans
    ]
    return sorted(rows, key=lambda row: row.start_ms)


def _parent(span: dict[str, Any]) -> str:
    references = span.get("references") or []
    return next((ref["spanID"] for ref in references if ref.get("refType") == "CHILD_OF"), "")


def _failed(span: dict[str, Any]) -> bool:
    """Jaeger marks a failed span with the tag error=true; OpenTelemetry's status is kept as otel.status_code."""
    tags = {tag.get("key"): tag.get("value") for tag in span.get("tags") or []}
    return tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"
