"""The uploader's HTTP API: submit an image, read an asset's status, list brands."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import BodyPartReader, web
from opentelemetry import propagate, trace

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
    tracer,
)
from atelier_shared.events import tier_from_name
from atelier_uploader.fold import merge_status
from atelier_uploader.ingest import Ingestor
from atelier_uploader.status import StatusView

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
    """Request handlers; the app wiring owns the clients they use."""

    def __init__(
        self,
        ingestor: Ingestor,
        uploads: Publisher,
        store: ObjectStore,
        status: StatusView,
        brand_names: list[str],
        presign_expiry: timedelta,
    ) -> None:
        self._ingestor = ingestor
        self._uploads = uploads
        self._store = store
        self._status = status
        self._brand_names = brand_names
        self._presign_expiry = presign_expiry

    def routes(self, app: web.Application) -> None:
        """Register the API's routes."""
        app.router.add_post("/v1/assets", self.submit)
        app.router.add_get("/v1/assets/{asset_id}", self.get_status)
        app.router.add_get("/v1/brands", self.list_brands)

    async def submit(self, request: web.Request) -> web.Response:
        """POST /v1/assets: validate, store, publish; 202 with the asset id."""
        with tracer().start_as_current_span(
            "POST /v1/assets",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": "POST", "url.path": "/v1/assets"},
        ) as span:
            try:
                response = await self._submit(request)
            except _BadRequest as exc:
                response = _error(exc.status, exc.code, str(exc))
            except AtelierError as exc:
                status = _status_for(exc)
                headers = {"Retry-After": "5"} if status == 503 else {}
                response = _error(status, exc.code, str(exc), **headers)
            span.set_attribute("http.response.status_code", response.status)
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
        trace.get_current_span().set_attributes({"atelier.asset_id": asset_id, "atelier.brand": brand})
        uploaded = await self._ingestor.ingest(
            data,
            asset_id=asset_id,
            brand=brand,
            tier=tier,
            style=style,
            source=events.SOURCE_HTTP,
            source_uri="http",
        )
        await self._uploads.publish(uploaded)
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        accepted = merge_status(None, topics.UPLOADED, uploaded)
        self._status.accepted(asset_id, {**accepted, "trace_id": trace_id})
        location = f"/v1/assets/{asset_id}"
        log.info("upload accepted", asset_id=asset_id, brand=brand, bytes=len(data))
        return web.json_response(
            {
                "asset_id": asset_id,
                "status_url": location,
                "brand": brand,
                "tier": events.tier_name(tier),
                "style": style,
                "trace_id": trace_id,
                "original": accepted["original"],
            },
            status=202,
            headers={"Location": location, "X-Trace-Id": trace_id},
        )

    async def get_status(self, request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: stage, timeline, tags, route, outputs with presigned URLs, failure."""
        asset_id = request.match_info["asset_id"]
        status = self._status.get(asset_id)
        if status is None:
            return _error(404, "not_found", f"no asset {asset_id!r} (yet): check the id, or retry shortly")
        return web.json_response(self._with_urls(status))

    def _with_urls(self, status: dict[str, Any]) -> dict[str, Any]:
        def sign(ref: dict[str, Any]) -> dict[str, Any]:
            if ref.get("bucket") and ref.get("key"):
                ref = {**ref, "url": self._store.presigned_url(ref["bucket"], ref["key"], self._presign_expiry)}
            return ref

        status = dict(status)
        status.pop("versions", None)  # The view's bookkeeping for order-independent merging.
        if "original" in status:
            status["original"] = sign(status["original"])
        if "stylized" in status:
            status["stylized"] = {**status["stylized"], "object": sign(status["stylized"].get("object", {}))}
        if "renditions" in status:
            status["renditions"] = [
                {**rendition, "object": sign(rendition.get("object", {}))} for rendition in status["renditions"]
            ]
        return status

    async def list_brands(self, _request: web.Request) -> web.Response:
        """GET /v1/brands: the brands this deployment knows."""
        return web.json_response({"brands": self._brand_names})
