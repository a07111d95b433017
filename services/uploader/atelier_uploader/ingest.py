"""Validate and store an original, and describe it in an AssetUploaded event.

The one path every upload takes, whether it came over HTTP, as a file dropped into the inbox
bucket, or as an intake event published by another system.
"""

import asyncio
from dataclasses import dataclass

from joblib import cpu_count

from atelier_shared import (
    STAGE_SECONDS,
    BrandBook,
    ImageTooLarge,
    ObjectStore,
    events,
    get_logger,
    sha256_hex,
    tracer,
)
from atelier_shared.images import ImageLimits, decode, extension_for, probe

log = get_logger(__name__)

# Validation decodes at this size: enough to prove the whole file decodes, a fraction of the work.
_VALIDATION_SIDE = 256


def validate_image(data: bytes, limits: ImageLimits) -> events.ObjectRef:
    """Sniff, check limits from the header, then prove the pixels decode; the original's ObjectRef."""
    info = probe(data, limits)
    decode(data, limits, max_side=_VALIDATION_SIDE, info=info)
    width, height = info.upright_size
    return events.ObjectRef(
        sha256=sha256_hex(data), size=len(data), width=width, height=height, content_type=info.content_type
    )


def original_key(brand: str, asset_id: str, content_type: str) -> str:
    """Where the validated original is stored."""
    return f"{brand}/{asset_id}/original.{extension_for(content_type)}"


@dataclass(frozen=True)
class Submission:
    """What an upload asks for and where it came from: its AssetUploaded event but the original."""

    asset_id: str
    brand: str
    tier: events.Tier
    style: str
    source: events.Source
    source_uri: str


def uploaded_event(submission: Submission, original: events.ObjectRef) -> events.AssetUploaded:
    """The event that starts an asset's way through the pipeline."""
    header = events.AssetHeader(
        asset_id=submission.asset_id,
        brand=submission.brand,
        tier=submission.tier,
        requested_style=submission.style,
        source=submission.source,
        source_uri=submission.source_uri,
        original=original,
    )
    header.timeline.uploaded_at.CopyFrom(events.now_timestamp())
    return events.AssetUploaded(asset=header)


def _request_metadata(submission: Submission) -> dict[str, str]:
    """What an original is stored with of its request, for an Idempotency-Key's retry to match."""
    return {"tier": events.tier_name(submission.tier), "style": submission.style}


class Ingestor:
    """Checks a request against the brand's guidelines, validates the image, stores the original."""

    def __init__(self, store: ObjectStore, brands: BrandBook, limits: ImageLimits, bucket: str) -> None:
        self._store = store
        self.brands = brands
        self.limits = limits
        self._bucket = bucket
        # One validation per CPU this process may use (its affinity and its container's CPU limit, not
        # the host's cores) at a time: more would finish no sooner, and each can hold hundreds of MB (a
        # 50 MP PNG decoded at full size), so a burst of uploads must not run them all at once.
        self.validation_slots = cpu_count()
        self._validating = asyncio.Semaphore(self.validation_slots)
        log.info("validations at once", count=self.validation_slots)

    def check(self, brand: str, tier: events.Tier, style: str) -> None:
        """Reject an unknown brand, or a tier or style its guidelines do not allow."""
        guidelines = self.brands.get(brand)
        guidelines.check_tier(events.tier_name(tier))
        if style:
            guidelines.check_style(style)

    async def same_request(self, submission: Submission, data: bytes) -> bool:
        """Whether the asset's stored original, if there is one, came with these bytes, tier and style
        (an Idempotency-Key's retry). Originals stored without a tier or style match any."""
        asked = {"sha256": sha256_hex(data), **_request_metadata(submission)}
        prefix = f"{submission.brand}/{submission.asset_id}/original."
        for key in await self._store.list_keys(self._bucket, prefix):
            stored = await self._store.stat(self._bucket, key)
            if stored is not None and any(stored.metadata.get(name, value) != value for name, value in asked.items()):
                return False
        return True

    def check_size(self, size: int) -> None:
        """Reject an object over the byte limit before downloading it."""
        if size > self.limits.max_bytes:
            raise ImageTooLarge(f"{size} bytes exceeds the limit of {self.limits.max_bytes} bytes")

    async def ingest(self, data: bytes, submission: Submission) -> events.AssetUploaded:
        """Validate, store the original at its deterministic key, and return the upload event."""
        original = await self.validate(data, submission)
        return await self.store(original, data, submission)

    async def validate(self, data: bytes, submission: Submission) -> events.ObjectRef:
        """The image's reference (size, type, hash) once it is checked against the brand and the limits."""
        attributes = {"atelier.asset_id": submission.asset_id}
        with tracer().start_as_current_span("validate", attributes=attributes) as span:
            self.check(submission.brand, submission.tier, submission.style)
            async with self._validating:
                with STAGE_SECONDS.labels("uploader", "validate").time():
                    original = await asyncio.to_thread(validate_image, data, self.limits)
            span.set_attributes(
                {"image.width": original.width, "image.height": original.height, "image.type": original.content_type}
            )
        return original

    async def store(self, original: events.ObjectRef, data: bytes, submission: Submission) -> events.AssetUploaded:
        """Store a validated original at its deterministic key; the upload event."""
        original.bucket = self._bucket
        original.key = original_key(submission.brand, submission.asset_id, original.content_type)
        metadata = {
            "asset-id": submission.asset_id,
            "brand": submission.brand,
            "sha256": original.sha256,
            **_request_metadata(submission),
        }
        await self._store.put(original.bucket, original.key, data, original.content_type, metadata=metadata)
        return uploaded_event(submission, original)
