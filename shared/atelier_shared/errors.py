"""Errors that carry their retry policy.

Transient errors (a store or broker that is down) are retried with back-off and never
dead-lettered; permanent errors (bad input, unknown style) go to the dead-letter topic at once.
Messages say what to fix.
"""

from collections.abc import Sequence
from typing import Any, ClassVar


class AtelierError(Exception):
    """Root of Atelier's errors; `retriable` says whether trying again can help."""

    retriable: ClassVar[bool] = False
    # Stable, machine-readable name used in dead-letter records, API errors and metrics.
    code: ClassVar[str] = "atelier_error"

    def __init__(self, message: str = "", *, asset_id: str = "", brand: str = "") -> None:
        super().__init__(message)
        # The asset concerned, when the failing record does not name it (a bucket notification).
        self.asset_id = asset_id
        self.brand = brand


class PermanentError(AtelierError):
    """Trying again cannot help: dead-letter the message."""


class TransientError(AtelierError):
    """A dependency is unavailable: retry with back-off."""

    retriable = True
    code = "transient"


class InvalidEvent(PermanentError):
    """A Kafka record that does not decode as its topic's message type."""

    code = "invalid_event"


class InvalidImage(PermanentError):
    """Bytes that are not a complete, decodable image."""

    code = "invalid_image"


class UnsupportedImageType(InvalidImage):
    """A file type Atelier does not accept."""

    code = "unsupported_type"


class ImageTooLarge(InvalidImage):
    """Over the byte or pixel limit (decompression bombs included)."""

    code = "too_large"


class UnknownBrand(PermanentError):
    """No brand guidelines file for this brand."""

    code = "unknown_brand"


class UnknownStyle(PermanentError):
    """A style no brand rule or model registry knows."""

    code = "unknown_style"


class NotAllowed(PermanentError):
    """A request the brand's guidelines do not allow (for example a tier)."""

    code = "not_allowed"


class ObjectMissing(PermanentError):
    """An event references an object that is not in the store."""

    code = "object_missing"


class InvalidModel(PermanentError):
    """A model artifact whose manifest or tensors are inconsistent."""

    code = "invalid_model"


class InferenceFailed(PermanentError):
    """The model cannot process this image (it failed alone, not for its batch's sake)."""

    code = "inference_failed"


class PublishRefused(PermanentError):
    """Kafka refused a record for good (too large, not authorised, ...): retrying cannot help."""

    code = "publish_refused"
    # Of the records sent, those not acknowledged (the rest are on their topics).
    unacknowledged: Sequence[Any] = ()


class StoreUnavailable(TransientError):
    """The object store did not answer."""

    code = "store_unavailable"


class BrokerUnavailable(TransientError):
    """Kafka did not accept or acknowledge a record."""

    code = "broker_unavailable"
    # Of the records sent, those not acknowledged (the rest are on their topics).
    unacknowledged: Sequence[Any] = ()
