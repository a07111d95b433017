"""The tagger's settings (ATELIER_* variables)."""

from pydantic import Field

from atelier_shared import AtelierSettings
from atelier_shared.images import ImageLimits


class TaggerSettings(AtelierSettings):
    """Concurrency and the decoding limits."""

    ops_port: int = Field(9101, ge=0, le=65535)
    tagger_concurrency: int = Field(2, ge=1)
    max_pixels: int = Field(50_000_000, ge=1)
    max_side: int = Field(16_384, ge=1)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=2**62, max_pixels=self.max_pixels, max_side=self.max_side)
