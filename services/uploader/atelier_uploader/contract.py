"""The API's contract: its operations, their bodies as pydantic models, and the OpenAPI 3.1 document built from them.

Routes are registered from the same `Operation` list the document is built from, so the document
cannot describe a route that does not exist or miss one that does. `/openapi.json` serves it and
`/docs` browses it (Swagger UI, shipped inside the swagger-ui-py package: nothing is fetched).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from swagger_ui.core import ApplicationDocument

TITLE = "Atelier API"
VERSION = "1.0.0"


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable reason, e.g. invalid_key, quota_exceeded")
    message: str = Field(description="what went wrong and what to do, for people")


class Error(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class ObjectInfo(BaseModel):
    """A stored image."""

    model_config = ConfigDict(extra="allow")
    bucket: str = ""
    key: str = ""
    url: str | None = Field(default=None, description="presigned download URL, when the object exists")


class Accepted(BaseModel):
    """An upload accepted into the pipeline."""

    asset_id: str
    status_url: str
    brand: str
    tier: str
    style: str = Field(description="the requested style, empty when the brand's rules choose")
    trace_id: str = Field(description="the OpenTelemetry trace that follows the asset")
    original: dict[str, Any]


class AssetStatus(BaseModel):
    """An asset's status: every pipeline event folded into one document."""

    model_config = ConfigDict(extra="allow")
    asset_id: str
    brand: str
    stage: str = Field(description="uploaded, tagged, routed, stylized, exported, or failed")
    reached: list[str] = []
    timeline: dict[str, Any] = {}
    renditions: list[dict[str, Any]] = Field(default=[], description="once exported, each with a presigned url")


class Brands(BaseModel):
    """The brands the caller may submit for: its own (every brand for an admin key)."""

    brands: list[str]


class UploadForm(BaseModel):
    """A multipart upload."""

    file: bytes = Field(json_schema_extra={"format": "binary", "contentMediaType": "application/octet-stream"})
    brand: str | None = Field(default=None, description="defaults to the key's brand; required with an admin key")
    tier: str = Field(default="production", description="preview or production")
    style: str = Field(default="", description="a style the brand allows; empty lets its rules choose")
    reference: str = Field(default="", description="the caller's own reference, kept as the asset's source_uri")


class BrandProfile(BaseModel):
    """What a submitter may ask of a brand: its styles, tiers and the latency it promises per tier."""

    brand: str
    display_name: str
    default_style: str
    styles: list[str] = Field(description="every style a submitter may request by name")
    tiers: list[str]
    latency_targets_ms: dict[str, int]


class AssetList(BaseModel):
    """A brand's most recent assets, newest first."""

    assets: list[AssetStatus]


class StatusEvent(BaseModel):
    """The event stream (text/event-stream): first `snapshot` (data: an AssetList of the brand's recent
    assets), then `status` (data: an AssetStatus) each time one of the brand's assets changes, in order,
    with ids increasing along the connection; `: keepalive` comments in between. The stream ends when
    the server stops or the client falls too far behind: reconnect and start again from the snapshot."""

    event: str = Field(description="snapshot or status")
    data: dict[str, Any]


class TraceSpan(BaseModel):
    """One span of an asset's trace."""

    span_id: str
    parent_id: str
    service: str
    name: str
    start_ms: float = Field(description="since the trace's first span started")
    duration_ms: float
    error: bool


class AssetTrace(BaseModel):
    """An asset's trace across the services, for a waterfall."""

    trace_id: str
    spans: list[TraceSpan]
    ui_url: str | None = Field(default=None, description="the trace in Jaeger's UI, where one is configured")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERRORS = {
    400: "the request is malformed (no image, no brand for an admin key, an unreadable body or Idempotency-Key)",
    401: "no API key, or an unknown or revoked one",
    403: "the key's brand may not submit for the brand named",
    404: "no such asset for the caller's brand",
    409: "the Idempotency-Key was used before with a different image, tier or style",
    413: "the image exceeds the upload limit",
    415: "not a JPEG, PNG, WebP, GIF, TIFF, HEIC/HEIF or AVIF image",
    422: "the image or a field is invalid (undecodable, over the pixel limit, unknown tier or style)",
    429: "over the brand's rate limit, in-flight quota or live streams (see Retry-After)",
    500: "the object store or Kafka refused the write for good; nothing was accepted",
    503: (
        "a dependency (Kafka, the object store, the status service) does not answer, or the replica is busy "
        "with other uploads' bodies (see Retry-After)"
    ),
}


@dataclass(frozen=True)
class Operation:
    """One route of the API and what it answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    success: tuple[int, type[BaseModel]]
    errors: tuple[int, ...]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    media_type: str = "application/json"


def parameter(name: str, where: str, description: str, required: bool = False) -> dict[str, Any]:
    """An operation's parameter (a string)."""
    return {"name": name, "in": where, "required": required, "description": description, "schema": {"type": "string"}}


def upload_parameters() -> list[dict[str, Any]]:
    """POST /v1/assets's parameters: the form fields may also come as query parameters with a raw body."""
    return [
        parameter("brand", "query", "with a raw image body: the brand (defaults to the key's)"),
        parameter("tier", "query", "with a raw image body: preview or production"),
        parameter("style", "query", "with a raw image body: a style the brand allows"),
        parameter("reference", "query", "with a raw image body: your own reference, kept as the source"),
        parameter("Idempotency-Key", "header", "retries with the same key and body get the same asset"),
    ]


def upload_body() -> dict[str, Any]:
    """POST /v1/assets's body: a multipart form, or the raw image bytes."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/UploadForm"}},
            "image/jpeg": binary,
            "image/png": binary,
            "image/webp": binary,
            "image/gif": binary,
            "image/tiff": binary,
            "image/heic": binary,
            "image/avif": binary,
        },
    }


def openapi(operations: list[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations."""
    models: set[type[BaseModel]] = {Error, UploadForm, *(operation.success[1] for operation in operations)}
    _, definitions = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        code, model = operation.success
        responses: dict[str, Any] = {
            str(code): {"description": model.__doc__ or "", "content": _content(model, operation.media_type)},
            **{str(status): {"description": ERRORS[status], "content": _json(Error)} for status in operation.errors},
        }
        document: dict[str, Any] = {
            "summary": operation.summary,
            "operationId": operation.handler.__name__,
            "parameters": operation.parameters,
            "responses": responses,
        }
        if operation.body is not None:
            document["requestBody"] = operation.body
        paths.setdefault(operation.path, {})[operation.method.lower()] = document
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": "Submit images, follow them, fetch renditions."},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "atelier_<id>_<secret>"}},
        },
        "security": [{"apiKey": []}],
    }


def _content(model: type[BaseModel], media_type: str) -> dict[str, Any]:
    return {media_type: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return _content(model, "application/json")


def register(routes: web.RouteTableDef, operations: list[Operation]) -> None:
    """Add the operations, `/openapi.json` and the `/docs` page to a route table."""
    for operation in operations:
        routes.route(operation.method, operation.path)(operation.handler)
    document = openapi(operations)

    async def contract(_request: web.Request) -> web.Response:
        return web.json_response(document)

    docs = ApplicationDocument(
        None, app_type="aiohttp", config_rel_url="/openapi.json", url_prefix="/docs", title=TITLE
    )
    page = docs.doc_html

    async def browse(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    routes.get("/openapi.json")(contract)
    routes.get(docs.swagger_json_uri_absolute)(contract)
    routes.get("/docs")(browse)
    routes.static(docs.static_uri_absolute, docs.static_dir)
