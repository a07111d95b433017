"""The router's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings


class RouterSettings(AtelierSettings):
    """Where the router serves health and metrics."""

    ops_port: int = Field(9102, ge=0, le=65535)
