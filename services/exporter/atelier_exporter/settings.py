"""The exporter's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings
from atelier_shared.images import ImageLimits


class ExporterSettings(AtelierSettings):
    """Concurrency and webhook delivery."""

    ops_port: int = Field(9104, ge=0, le=65535)
    exporter_concurrency: int = Field(2, ge=1)
    webhook_attempts: int = Field(3, ge=1)
    webhook_timeout_s: float = Field(5.0, gt=0)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=2**62, max_pixels=200_000_000, max_side=16_384)
