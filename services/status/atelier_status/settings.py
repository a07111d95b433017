"""The status service's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings


class StatusSettings(AtelierSettings):
    """Its HTTP port (reads, health, metrics) and how long presigned object URLs live."""

    ops_port: int = Field(9105, ge=0, le=65535)
    presign_expiry_s: int = Field(3600, ge=60)
