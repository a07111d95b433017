"""Bucket notifications (pure): the objects a notification announces, and their brand, tier and style.

The S3 event record format, as MinIO, Ceph RGW and AWS S3 send it: a `Records` list whose created
objects have an `eventName` of `ObjectCreated:Put` and the like (MinIO and older RGW prefix it with `s3:`) and a
URL-encoded key. User metadata comes as MinIO's `userMetadata` mapping or RGW's `metadata` list of
key/val pairs; AWS S3 sends none (the intake then reads it from the object itself).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from atelier_shared import InvalidEvent
from atelier_shared.events import TIER_PRODUCTION, TIERS, Tier, tier_from_name

# The events that create an object's content. MinIO names tagging, retention and legal holds
# `ObjectCreated:` too (PutTagging, DeleteTagging, PutRetention, PutLegalHold): those are not uploads.
CREATED = frozenset(f"ObjectCreated:{how}" for how in ("Put", "Post", "Copy", "CompleteMultipartUpload"))


@dataclass(frozen=True)
class DroppedObject:
    """An object created in the inbox bucket, as its notification describes it."""

    bucket: str
    key: str
    size: int
    etag: str
    metadata: dict[str, str]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_notification(notification: Any) -> list[DroppedObject]:
    """The created objects in a bucket notification (S3 event JSON); other events are ignored."""
    if not isinstance(notification, dict) or not isinstance(notification.get("Records"), list):
        raise InvalidEvent("bucket notification without a Records list")
    objects = []
    for record in notification["Records"]:
        try:
            if str(record["eventName"]).removeprefix("s3:") not in CREATED:
                continue
            s3 = record["s3"]
            item = s3["object"]
            metadata = {
                str(name).lower().removeprefix("x-amz-meta-"): str(value) for name, value in _user_metadata(item)
            }
            objects.append(
                DroppedObject(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(item["key"])),
                    size=int(item.get("size") or 0),
                    etag=str(item.get("eTag") or item.get("sequencer") or ""),
                    metadata=metadata,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InvalidEvent(f"malformed bucket notification record: {exc!r}"[:500]) from exc
    return objects


def _user_metadata(item: dict[str, Any]) -> list[tuple[Any, Any]]:
    """MinIO's `userMetadata` mapping or Ceph RGW's `metadata` list of {key, val}, as pairs."""
    if isinstance(item.get("userMetadata"), dict):
        return list(item["userMetadata"].items())
    return [(pair["key"], pair["val"]) for pair in item.get("metadata") or []]


@dataclass(frozen=True)
class DropRequest:
    """Brand, tier and style of a dropped object."""

    brand: str
    tier: Tier
    style: str


def dropped_brand(item: DroppedObject) -> str:
    """The brand a dropped object names: its metadata's, else its key's first segment ("" for none)."""
    parts = item.key.split("/")
    return item.metadata.get("brand") or (parts[0] if len(parts) > 1 else "")


def drop_request(item: DroppedObject) -> DropRequest:
    """Brand from metadata or the first key segment; tier from metadata or a second segment.

    Key layout: <brand>/[preview|production/]<name>; metadata x-amz-meta-brand, -tier and -style
    take precedence.
    """
    parts = item.key.split("/")
    brand = dropped_brand(item)
    if not brand:
        raise InvalidEvent(f"{item.uri}: no brand: put it under <brand>/ or set x-amz-meta-brand")
    tier_name = item.metadata.get("tier") or (parts[1] if len(parts) > 2 and parts[1] in TIERS else "")
    try:
        tier = tier_from_name(tier_name) if tier_name else TIER_PRODUCTION
    except ValueError as exc:
        raise InvalidEvent(f"{item.uri}: {exc}") from exc
    return DropRequest(brand=brand, tier=tier, style=item.metadata.get("style", ""))
