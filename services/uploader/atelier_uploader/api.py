"""The uploader's HTTP API: submit an image, read an asset's status (from the status service), list brands."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import BodyPartReader, web
from cachetools import LRUCache
from opentelemetry import trace

from atelier_shared import (
    AtelierError,
    ImageTooLarge,
    ObjectStore,
    Publisher,
    TransientError,
    UnsupportedImageType,
    assets,
    events,
    get_logger,
    topics,
)
from atelier_shared.events import tier_from_name
from atelier_shared.status import merge_status, with_urls
from atelier_uploader.ingest import Ingestor

log = get_logger(__name__)


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _status_for(error: AtelierError) -> int:
    if isinstance(error, ImageTooLarge):
        return 413
    if isinstance(error, UnsupportedImageType):
        return 415
    if isinstance(error, TransientError):
        return 503
    return 422


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


async def _read_limited(read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await read(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise ImageTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_upload(request: web.Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The image bytes and the form or query fields, reading no more than `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise ImageTooLarge(f"{request.content_length} bytes exceeds the limit of {limit} bytes")
    fields = dict(request.query)
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        data = b""
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                data = await _read_limited(part.read_chunk, limit)
            else:
                fields[part.name] = (await part.read(decode=True)).decode(errors="replace")[:256]
        return data, fields
    return await _read_limited(request.content.read, limit), fields


class Api:
    """The API's request handlers; reads are forwarded to the status service."""

    def __init__(
        self,
        ingestor: Ingestor,
        uploads: Publisher,
        store: ObjectStore,
        status_url: str,
        brand_names: list[str],
        presign_expiry: timedelta,
    ) -> None:
        self._ingestor = ingestor
        self._uploads = uploads
        self._store = store
        self._status_url = status_url
        self._brand_names = brand_names
        self._presign_expiry = presign_expiry
        # Uploads accepted here, answered until the status service has them (read your writes).
        self._accepted: LRUCache[str, dict[str, Any]] = LRUCache(maxsize=10_000)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session to the status service."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        """Close it."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def routes(self, routes: web.RouteTableDef) -> None:
        """Register the API's routes."""
        routes.post("/v1/assets")(self.submit)
        routes.get("/v1/assets/{asset_id}")(self.get_status)
        routes.get("/v1/brands")(self.list_brands)

    async def submit(self, request: web.Request) -> web.Response:
        """POST /v1/assets: validate, store, publish; 202 with the asset id."""
        try:
            response = await self._submit(request)
        except _BadRequest as exc:
            response = _error(exc.status, exc.code, str(exc))
        except AtelierError as exc:
            status = _status_for(exc)
            headers = {"Retry-After": "5"} if status == 503 else {}
            response = _error(status, exc.code, str(exc), **headers)
        if response.status >= 400:
            log.info("upload rejected", status=response.status, reason=response.text)
        return response

    async def _submit(self, request: web.Request) -> web.Response:
        data, fields = await _read_upload(request, self._ingestor.limits.max_bytes)
        brand = fields.get("brand", "").strip()
        if not brand:
            raise _BadRequest(400, "missing_brand", "the `brand` field is required (query or form field)")
        if not data:
            raise _BadRequest(400, "empty_body", "the request carries no image bytes")
        try:
            tier = tier_from_name(fields.get("tier", "production").strip() or "production")
        except ValueError as exc:
            raise _BadRequest(422, "invalid_tier", str(exc)) from exc
        style = fields.get("style", "").strip()
        key = request.headers.get("Idempotency-Key", "").strip()
        asset_id = assets.asset_id_for_key(brand, key) if key else assets.new_asset_id()
        span = trace.get_current_span()
        span.set_attributes({"atelier.asset_id": asset_id, "atelier.brand": brand})
        uploaded = await self._ingestor.ingest(
            data, asset_id=asset_id, brand=brand, tier=tier, style=style, source=events.SOURCE_HTTP, source_uri="http"
        )
        await self._uploads.publish(uploaded)
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
        accepted = {**merge_status(None, topics.UPLOADED, uploaded), "trace_id": trace_id}
        self._accepted[asset_id] = accepted
        location = f"/v1/assets/{asset_id}"
        log.info("upload accepted", asset_id=asset_id, brand=brand, bytes=len(data))
        body = {
            "asset_id": asset_id,
            "status_url": location,
            "brand": brand,
            "tier": events.tier_name(tier),
            "style": style,
            "trace_id": trace_id,
            "original": accepted["original"],
        }
        return web.json_response(body, status=202, headers={"Location": location, "X-Trace-Id": trace_id})

    async def get_status(self, request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: the status service's answer, or this uploader's own for an upload it just accepted."""
        asset_id = request.match_info["asset_id"]
        if self._session is None:
            raise RuntimeError("Api used before start(): the status session is not open")
        try:
            async with self._session.get(f"{self._status_url}/v1/assets/{quote(asset_id, safe='')}") as answer:
                if answer.status != 404 or asset_id not in self._accepted:
                    if answer.status == 200:
                        self._accepted.pop(asset_id, None)
                    return web.Response(status=answer.status, body=await answer.read(), content_type="application/json")
        except (aiohttp.ClientError, TimeoutError) as exc:
            if asset_id not in self._accepted:
                message = f"the status service does not answer ({exc!r}); retry shortly"
                return _error(503, "status_unavailable", message, **{"Retry-After": "2"})
        sign = lambda bucket, key: self._store.presigned_url(bucket, key, self._presign_expiry)  # noqa: E731
        return web.json_response(with_urls(self._accepted[asset_id], sign))

    async def list_brands(self, _request: web.Request) -> web.Response:
        """GET /v1/brands: the brands this deployment knows."""
        return web.json_response({"brands": self._brand_names})
