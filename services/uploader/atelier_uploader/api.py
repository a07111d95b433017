"""The uploader's HTTP API: submit an image, read an asset's status (from the status service), list brands.

Every route acts for the caller's brand (access.key_check authenticated it): a brand's key submits
for that brand only, reads only its assets (another brand's asset answers 404, as an unknown one
does, so ids reveal nothing) and lists only its own brand. An admin key acts for any brand.
"""

import asyncio
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from weakref import WeakValueDictionary

import aiohttp
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from cachetools import LRUCache
from opentelemetry import trace

from atelier_shared import (
    AtelierError,
    ImageTooLarge,
    InvalidImage,
    NotAllowed,
    ObjectStore,
    Publisher,
    TransientError,
    UnknownBrand,
    UnknownStyle,
    UnsupportedImageType,
    assets,
    events,
    get_logger,
    topics,
)
from atelier_shared.events import tier_from_name
from atelier_shared.status import merge_status, with_urls
from atelier_uploader import contract
from atelier_uploader.access import InFlight, Quotas, Refused, error, principal
from atelier_uploader.bodies import BodyBudget, Busy
from atelier_uploader.ingest import Ingestor, Submission
from atelier_uploader.keys import Principal

log = get_logger(__name__)


class DependencyTimeout(TransientError):
    """A dependency of an upload (object store, Kafka) did not answer within the upload's deadline."""

    code = "dependency_timeout"


# Errors in what the caller sent, answered 4xx with what to fix. Any other AtelierError is the
# service's own (the object store or Kafka refusing a write), answered 500 or 503 without its text,
# which names buckets, keys and brokers: the log has it.
_CALLERS_ERRORS = (InvalidImage, UnknownBrand, UnknownStyle, NotAllowed)


def _answer(exc: AtelierError) -> web.Response:
    """The error answer to an upload that failed with `exc`."""
    if isinstance(exc, ImageTooLarge):
        return error(413, exc.code, str(exc))
    if isinstance(exc, UnsupportedImageType):
        return error(415, exc.code, str(exc))
    if isinstance(exc, _CALLERS_ERRORS):
        return error(422, exc.code, str(exc))
    log.warning("upload failed in a dependency", error_type=exc.code, error=str(exc)[:500])
    if isinstance(exc, DependencyTimeout):
        return error(503, exc.code, str(exc), **{"Retry-After": "5"})
    if isinstance(exc, TransientError):
        return error(503, exc.code, "the object store or Kafka is unavailable; retry later", **{"Retry-After": "5"})
    return error(500, "internal_error", "the upload could not be stored or announced; retry later or report it")


# What a call to another service (the status service, the trace store) raises when it does not answer,
# or answers something that is not a JSON object.
UNANSWERED = (aiohttp.ClientError, TimeoutError, ValueError)


class BadRequest(Exception):
    """A request answered with a 4xx and its error code."""

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


# A form carries the image and a few short fields: its framing and fields get this much beside the
# image's limit, and it may have this many parts.
_FORM_OVERHEAD = 64 * 1024
_FORM_PARTS = 16
# How long an upload waits for room to hold its body before it is answered 503 `busy`.
BODY_WAIT_S = 10.0
# The longest field value (form or query) an upload may carry: `reference` is the only free text.
FIELD_CHARS = 256


def _compressed(headers: Mapping[str, str]) -> bool:
    """Whether a body or part is sent compressed (aiohttp inflates it as it is read)."""
    return headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower() != "identity"


def body_bytes(request: web.Request, limit: int) -> int:
    """What an upload's body may hold in memory: its Content-Length, or the most a body may be where
    it has none or is compressed (aiohttp inflates it as it is read). ImageTooLarge for a declared
    length over the limit, before anything is read or waited for."""
    most = limit + (_FORM_OVERHEAD if request.content_type == "multipart/form-data" else 0)
    if request.content_length is not None and request.content_length > most:
        raise ImageTooLarge(f"{request.content_length} bytes exceeds the limit of {limit} bytes")
    return most if request.content_length is None or _compressed(request.headers) else request.content_length


async def _read_upload(request: web.Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The image bytes and the form or query fields, reading no more than `limit` bytes of image."""
    form = request.content_type == "multipart/form-data"
    fields = dict(request.query)
    data: bytes | None = None
    try:
        if not form:
            return await _read_limited(request.content.read, limit), fields
        reader = await request.multipart()
        for _ in range(_FORM_PARTS + 1):
            if (part := await reader.next()) is None:
                break
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if _compressed(part.headers):  # Inflated whole by aiohttp: 64 KiB of gzip could become a gigabyte.
                raise BadRequest(400, "malformed_body", "form parts may not be compressed (Content-Encoding)")
            if part.name != "file":
                value = part.decode(await _read_limited(part.read_chunk, _FORM_OVERHEAD))
                # Kept to one past the limit: a longer value is refused, not cut.
                fields[part.name] = value.decode(errors="replace").strip()[: FIELD_CHARS + 1]
            elif data is None:
                data = await _read_limited(part.read_chunk, limit)
            else:
                raise BadRequest(400, "malformed_body", "one `file` part per upload")
        else:
            raise BadRequest(400, "malformed_body", f"a form of more than {_FORM_PARTS} parts")
    except (HttpProcessingError, RequestPayloadError, ValueError, LookupError, RuntimeError) as exc:
        # aiohttp raises these on a malformed body: bad part headers, boundary or charset, an unknown
        # Content-Transfer-Encoding (RuntimeError), a Content-Encoding the bytes do not follow.
        message = f"the request body cannot be read ({exc.__class__.__name__})"
        raise BadRequest(400, "malformed_body", message) from exc
    return data or b"", fields


def acting_brand(request: web.Request, fields: dict[str, str]) -> str:
    """The brand a request acts for: its `brand` field, else the key's; an admin key must name one."""
    caller = principal(request)
    brand = fields.get("brand", "").strip() or caller.brand or ""
    if not brand:
        raise BadRequest(400, "missing_brand", "an admin key must name the `brand` (query or form field)")
    if not caller.may_see(brand):
        raise BadRequest(403, "brand_forbidden", "this API key may act only for its own brand")
    return brand


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
        ingest_deadline_s: float = 10.0,
        buffer_bytes: int = 512 * 1024**2,
    ) -> None:
        self._ingestor = ingestor
        self._bodies = BodyBudget(buffer_bytes, wait_s=BODY_WAIT_S)
        self._deadline_s = ingest_deadline_s
        self._uploads = uploads
        self._store = store
        self._status_url = status_url
        self._brand_names = brand_names
        self._presign_expiry = presign_expiry
        self.quotas = Quotas(ingestor.brands, self._in_flight)
        # Uploads accepted here, answered until the status service has them (read your writes).
        self._accepted: LRUCache[str, dict[str, Any]] = LRUCache(maxsize=10_000)
        # One submission per asset id at a time in this replica (an Idempotency-Key retried concurrently).
        self._submitting: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session to the status service."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        """Close it."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def operations(self) -> list[contract.Operation]:
        """The API's routes, as the contract describes them."""
        return [
            contract.Operation(
                "POST",
                "/v1/assets",
                self.submit,
                "Submit an image: validated, stored, and sent into the pipeline",
                (202, contract.Accepted),
                (400, 401, 403, 409, 413, 415, 422, 429, 500, 503),
                contract.upload_parameters(),
                contract.upload_body(),
            ),
            contract.Operation(
                "GET",
                "/v1/assets/{asset_id}",
                self.get_status,
                "An asset's status: stage, timeline, tags, route, renditions with download URLs, failure",
                (200, contract.AssetStatus),
                (401, 404, 503),
                [{"name": "asset_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            ),
            contract.Operation(
                "GET",
                "/v1/brands",
                self.list_brands,
                "The brands the caller may submit for",
                (200, contract.Brands),
                (401,),
            ),
        ]

    async def submit(self, request: web.Request) -> web.Response:
        """POST /v1/assets: validate, store, publish; 202 with the asset id."""
        try:
            brand = principal(request).brand
            if brand and request.query.get("brand", brand) == brand:  # Over its rate, no room from others' bodies.
                await self.quotas.check_rate(brand)
            async with self._bodies.hold(body_bytes(request, self._ingestor.limits.max_bytes)):
                response = await self._submit(request)
        except Busy as exc:
            response = error(503, "busy", f"{exc}; retry shortly", **{"Retry-After": "2"})
        except BadRequest as exc:
            response = error(exc.status, exc.code, str(exc))
        except Refused as exc:
            response = error(429, exc.code, str(exc), **{"Retry-After": str(exc.retry_after_s)})
        except AtelierError as exc:
            response = _answer(exc)
        if response.status >= 400:
            log.info("upload rejected", status=response.status, reason=response.text)
        return response

    async def _submit(self, request: web.Request) -> web.Response:
        data, fields = await _read_upload(request, self._ingestor.limits.max_bytes)
        brand = acting_brand(request, fields)
        if not data:
            raise BadRequest(400, "empty_body", "the request carries no image bytes")
        try:
            tier = tier_from_name(fields.get("tier", "production").strip() or "production")
        except ValueError as exc:
            raise BadRequest(422, "invalid_tier", str(exc)) from exc
        style = fields.get("style", "").strip()
        # The caller's own reference (the studio's: its upload and file name), kept as the source.
        reference = fields.get("reference", "").strip()
        if len(reference) > FIELD_CHARS or any(unicodedata.category(char) == "Cc" for char in reference):
            message = f"`reference` must be text of at most {FIELD_CHARS} characters, without control characters"
            raise BadRequest(422, "invalid_reference", message)
        self._ingestor.check(brand, tier, style)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255 or not (key.isascii() and key.isprintable()):
            raise BadRequest(
                400, "invalid_idempotency_key", "an Idempotency-Key is at most 255 printable ASCII characters"
            )
        asset_id = assets.asset_id_for_key(brand, key) if key else assets.new_asset_id()
        span = trace.get_current_span()
        span.set_attributes({"atelier.asset_id": asset_id, "atelier.brand": brand})
        submission = Submission(asset_id, brand, tier, style, events.SOURCE_HTTP, reference or "http")
        reading = await self.quotas.precheck(brand, asset_id)
        original = await self._ingestor.validate(data, submission)
        async with self._submitting.setdefault(asset_id, asyncio.Lock()):
            if key:
                async with self._deadline():
                    same = await self._ingestor.same_request(submission, data)
                if not same:
                    message = "this Idempotency-Key was used with another image, tier or style: use a new key"
                    raise BadRequest(409, "idempotency_conflict", message)
            await self.quotas.admit(brand, asset_id, reading)
            uploaded = await self._ingest(original, data, submission)
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
        accepted = {**merge_status(None, topics.UPLOADED, uploaded), "trace_id": trace_id}
        self._accepted[asset_id] = accepted
        location = f"/v1/assets/{asset_id}"
        log.info("upload accepted", asset_id=asset_id, brand=brand, bytes=len(data))
        body = contract.Accepted(
            asset_id=asset_id,
            status_url=location,
            brand=brand,
            tier=events.tier_name(tier),
            style=style,
            trace_id=trace_id,
            original=accepted["original"],
        )
        headers = {"Location": location, "X-Trace-Id": trace_id}
        return web.json_response(body.model_dump(), status=202, headers=headers)

    @asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """The object store and Kafka answer within the ingest deadline, or the upload is answered 503: a hung
        dependency must not hold the client (make bench-reliability: uploads waited out a 60 s outage)."""
        try:
            async with asyncio.timeout(self._deadline_s):
                yield
        except TimeoutError as exc:
            raise DependencyTimeout(
                f"the object store or Kafka did not answer within {self._deadline_s:g} s; retry later "
                "(with an Idempotency-Key a retry is the same asset, never a second one)"
            ) from exc

    async def _ingest(self, original: events.ObjectRef, data: bytes, submission: Submission) -> events.AssetUploaded:
        """Store the validated original and publish its upload event, within the deadline."""
        try:
            async with self._deadline():
                uploaded = await self._ingestor.store(original, data, submission)
                await self._uploads.publish(uploaded)
        except BaseException:
            self.quotas.release(submission.brand, submission.asset_id)
            raise
        return uploaded

    async def get_status(self, request: web.Request) -> web.Response:
        """GET /v1/assets/{id}: the status service's answer, or this uploader's own for an upload it just accepted."""
        found = await self.lookup(principal(request), request.match_info["asset_id"])
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def lookup(self, caller: Principal, asset_id: str) -> dict[str, Any] | web.Response:
        """An asset's status for a caller, or the error answer: 404 for another brand's asset, as for an unknown one."""
        status, answer = self._accepted.get(asset_id), None
        try:
            answer = await self._status(f"/v1/assets/{quote(asset_id, safe='')}")
        except UNANSWERED as exc:
            if status is None:
                log.warning("status service unavailable", error=repr(exc))  # Its host stays out of answers.
                message = "the status service does not answer; retry shortly"
                return error(503, "status_unavailable", message, **{"Retry-After": "2"})
        else:
            if answer is not None:
                self._accepted.pop(asset_id, None)
                status = answer
        if status is None or not caller.may_see(str(status.get("brand", ""))):
            return error(404, "not_found", f"no asset {asset_id!r} (yet): check the id, or retry shortly")
        if answer is not None:
            return status
        return with_urls(status, lambda bucket, key: self._store.presigned_url(bucket, key, self._presign_expiry))

    async def brand_of(self, asset_id: str) -> str | None:
        """The brand an asset id belongs to as the status service knows it; None for an unknown id, or
        when the status service does not answer (its view refuses another brand's events anyway)."""
        try:
            answer = await self._status(f"/v1/assets/{quote(asset_id, safe='')}", timeout_s=2.0)
        except UNANSWERED as exc:
            log.warning("asset id owner unknown: status service unavailable", error=repr(exc))
            return None
        return str(answer.get("brand") or "") or None if answer else None

    async def _status(self, path: str, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """The status service's JSON answer, or None when it answers 404."""
        if self._session is None:
            raise RuntimeError("Api used before start(): the status session is not open")
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self._session.get(f"{self._status_url}{path}", timeout=timeout) as answer:
            if answer.status == 404:
                return None
            answer.raise_for_status()
            document = await answer.json()
            if not isinstance(document, dict):
                raise ValueError(f"the status service answered a JSON {type(document).__name__}, not an object")
            return document

    async def _in_flight(self, brand: str, limit: int) -> InFlight | None:
        """The status service's count of the brand's open assets, or None when it does not answer."""
        try:
            # Short: every upload waits on it (before validation), and falls back to the local count.
            answer = await self._status(f"/v1/brands/{quote(brand, safe='')}/open?limit={limit}", timeout_s=1.0)
            return InFlight(open=int(answer["open"]), asset_ids=frozenset(answer["asset_ids"])) if answer else None
        except (*UNANSWERED, KeyError, TypeError) as exc:  # Or not the document asked for.
            log.warning("in-flight quota counted locally: status service unavailable", error=repr(exc))
            return None

    async def list_brands(self, request: web.Request) -> web.Response:
        """GET /v1/brands: the caller's brand (every brand for an admin key)."""
        caller = principal(request)
        brands = self._brand_names if caller.brand is None else [caller.brand]
        return web.json_response(contract.Brands(brands=brands).model_dump())
