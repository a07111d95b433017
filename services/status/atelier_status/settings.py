"""The status service's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings


class StatusSettings(AtelierSettings):
    """Its HTTP port (reads, health, metrics), how long presigned object URLs live, and how long an
    asset's status is kept after its last change (0: for ever)."""

    ops_port: int = Field(9105, ge=0, le=65535)
    presign_expiry_s: int = Field(3600, ge=60)
    status_retention_days: float = Field(30, ge=0)
