"""Atelier's event types, generated from proto/atelier/v1/events.proto (run `make proto` after editing it)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp

from atelier_shared._proto.atelier.v1.events_pb2 import (
    MODEL_TIER_FAST,
    MODEL_TIER_QUALITY,
    SOURCE_BUCKET_DROP,
    SOURCE_EVENT,
    SOURCE_HTTP,
    TIER_PREVIEW,
    TIER_PRODUCTION,
    AssetExported,
    AssetHeader,
    AssetStylized,
    AssetSubmitted,
    AssetTagged,
    AssetUploaded,
    DeadLettered,
    ExportProfile,
    ModelTier,
    ObjectRef,
    PaletteColor,
    PoolReported,
    Rendition,
    RouteDecision,
    Source,
    StyleRequested,
    StylizeTimings,
    Subject,
    Tags,
    Tier,
    Timeline,
    WebhookDelivery,
    WebhookReported,
    WebhookRetryScheduled,
)

TIERS = ("preview", "production")
MODEL_TIERS = ("quality", "fast")


def _enum_name(enum: Any, prefix: str, value: int) -> str:
    """An enum value's name without its prefix, lowercase; "unspecified" for values this code does not know."""
    return str(enum.Name(value) if value in enum.values() else f"{prefix}UNSPECIFIED").removeprefix(prefix).lower()


def tier_name(tier: int) -> str:
    """ "preview" or "production" ("unspecified" when unset)."""
    return _enum_name(Tier, "TIER_", tier)


def model_tier_name(tier: int) -> str:
    """ "quality" or "fast" ("unspecified" when unset)."""
    return _enum_name(ModelTier, "MODEL_TIER_", tier)


def source_name(source: int) -> str:
    """ "http", "bucket_drop" or "event" ("unspecified" when unset)."""
    return _enum_name(Source, "SOURCE_", source)


def tier_from_name(name: str) -> Tier:
    """The Tier for "preview" or "production"; ValueError names the accepted values."""
    if name not in TIERS:
        raise ValueError(f"unknown tier {name!r}: use one of {list(TIERS)}")
    return cast(Tier, Tier.Value(f"TIER_{name.upper()}"))


def model_tier_from_name(name: str) -> ModelTier:
    """The ModelTier for "quality" or "fast"."""
    if name not in MODEL_TIERS:
        raise ValueError(f"unknown model tier {name!r}: use one of {list(MODEL_TIERS)}")
    return cast(ModelTier, ModelTier.Value(f"MODEL_TIER_{name.upper()}"))


def now_timestamp() -> Timestamp:
    """The current time as a protobuf Timestamp."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def timestamp_ms(stamp: Timestamp) -> float:
    """Milliseconds since the epoch of a Timestamp (0 when unset)."""
    return float(stamp.seconds * 1000.0 + stamp.nanos / 1e6)


# Stages of an asset's way, as (name, from timeline field, to timeline field).
TIMELINE_STAGES = (
    ("tag", "uploaded_at", "tagged_at"),
    ("route", "tagged_at", "routed_at"),
    ("stylize", "routed_at", "stylized_at"),
    ("export", "stylized_at", "exported_at"),
    ("total", "uploaded_at", "exported_at"),
)


def timeline_ms(timeline: Timeline) -> dict[str, float]:
    """The stamps a timeline has, as epoch milliseconds by field name."""
    return {field.name: timestamp_ms(stamp) for field, stamp in timeline.ListFields()}


def stage_durations_ms(stamps_ms: Mapping[str, float]) -> dict[str, float]:
    """Milliseconds per stage (tag, route, stylize, export) and in total, for the stages whose ends are stamped."""
    return {
        stage: max(stamps_ms[end] - stamps_ms[start], 0.0)
        for stage, start, end in TIMELINE_STAGES
        if stamps_ms.get(start) and stamps_ms.get(end)
    }


def timestamp_iso(stamp: Timestamp) -> str | None:
    """ISO-8601 UTC text of a Timestamp, or None when unset."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return datetime.fromtimestamp(timestamp_ms(stamp) / 1000, tz=UTC).isoformat()


__all__ = [
    "MODEL_TIER_FAST",
    "MODEL_TIERS",
    "MODEL_TIER_QUALITY",
    "SOURCE_BUCKET_DROP",
    "SOURCE_EVENT",
    "SOURCE_HTTP",
    "TIERS",
    "TIMELINE_STAGES",
    "TIER_PREVIEW",
    "TIER_PRODUCTION",
    "AssetExported",
    "AssetHeader",
    "AssetStylized",
    "AssetSubmitted",
    "AssetTagged",
    "AssetUploaded",
    "DeadLettered",
    "ExportProfile",
    "ModelTier",
    "ObjectRef",
    "PaletteColor",
    "PoolReported",
    "Rendition",
    "RouteDecision",
    "Source",
    "StyleRequested",
    "StylizeTimings",
    "Subject",
    "Tags",
    "Tier",
    "Timeline",
    "WebhookDelivery",
    "WebhookReported",
    "WebhookRetryScheduled",
    "model_tier_from_name",
    "model_tier_name",
    "source_name",
    "stage_durations_ms",
    "now_timestamp",
    "tier_from_name",
    "tier_name",
    "timeline_ms",
    "timestamp_iso",
    "timestamp_ms",
]
