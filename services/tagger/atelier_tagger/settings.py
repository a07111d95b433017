"""The tagger's settings (ATELIER_* variables)."""

from pathlib import Path

from pydantic import Field

from atelier_shared import AtelierSettings
from atelier_shared.images import ImageLimits


class TaggerSettings(AtelierSettings):
    """Concurrency, the decoding limits, and the classifier."""

    ops_port: int = Field(9101, ge=0, le=65535)
    tagger_concurrency: int = Field(2, ge=1)
    max_pixels: int = Field(50_000_000, ge=1)
    max_side: int = Field(16_384, ge=1)
    # The exported classifier (`atelier models export-classifier --out DIR`; the image ships one here).
    classifier_dir: Path = Path("/opt/atelier/classifier")
    # Below this summed class probability an image gets no category rather than a wrong one.
    category_threshold: float = Field(0.35, ge=0.0, le=1.0)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=2**62, max_pixels=self.max_pixels, max_side=self.max_side)
