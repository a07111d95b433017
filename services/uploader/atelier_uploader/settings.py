"""The uploader's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings, HttpEndpoint
from atelier_shared.images import ImageLimits


class UploaderSettings(AtelierSettings):
    """HTTP API, upload limits, and where the status service answers reads."""

    # The public API; health, readiness and metrics answer on the operations port.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    ops_port: int = Field(9100, ge=0, le=65535)
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1)
    # The upload bodies one replica holds in memory at once (reserved by Content-Length, or the
    # limit when a body has none); further uploads wait their turn, up to 10 s, then are answered 503 `busy`.
    upload_buffer_bytes: int = Field(512 * 1024 * 1024, ge=1)
    max_pixels: int = Field(50_000_000, ge=1)
    max_side: int = Field(16_384, ge=1)
    presign_expiry_s: int = Field(3600, ge=60)
    # An upload's time to store its original and publish it, after which it is answered 503.
    ingest_deadline_s: float = Field(10.0, gt=0)
    # Ingest concurrency for bucket drops and intake events.
    intake_concurrency: int = Field(4, ge=1)
    # How often the API keys are reloaded: a new key works, and a revoked one stops, within this delay.
    key_refresh_s: float = Field(2.0, gt=0)
    # The status service, to which GET /v1/assets/{id} and the studio's event streams are forwarded.
    status_url: HttpEndpoint = "http://127.0.0.1:9105"
    # Jaeger's query service (its HTTP API), read for the studio's trace waterfall; empty: none.
    trace_query_url: HttpEndpoint = ""
    # Where people open a trace (Jaeger's UI, linked as <url>/trace/<id>); empty: no link.
    trace_ui_url: HttpEndpoint = ""

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels, max_side=self.max_side)
