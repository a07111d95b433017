"""Atelier's Kafka topics and the message type each carries: the one place that defines them.

Every topic is keyed by asset id (the inbox notifications, which MinIO publishes, are keyed by
"bucket/object"; pool reports by pool). Names are a deployment-wide prefix (default "atelier.")
plus the suffixes below; tests give each run its own prefix. Which service publishes and which
consumes each topic is declared by the services themselves (atelier_shared.Service); the README's
topic table is generated from those declarations.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from atelier_shared import events
from atelier_shared.errors import InvalidEvent

M = TypeVar("M")
P = TypeVar("P", bound=Message)


@dataclass(frozen=True)
class TopicSpec(Generic[M]):
    """A topic: its name after the prefix, what its records hold, and who outside Atelier uses it."""

    suffix: str
    # The record value's type as shown to people (the protobuf message name, or a format).
    message: str
    description: str
    parse: Callable[[bytes], M] = field(repr=False, compare=False)
    # Publishers and readers outside Atelier's services, for the topic table.
    published_outside: str = ""
    read_outside: str = ""

    def decode(self, value: bytes | None) -> M:
        """A record value as this topic's type; InvalidEvent says why it is not."""
        if value is None:
            raise InvalidEvent(f"empty record on topic {self.suffix!r}")
        try:
            return self.parse(value)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 Any record that does not parse is bad input, not a crash.
            # DecodeError and ValueError mostly; RecursionError for JSON nested 100,000 deep.
            raise InvalidEvent(f"not a {self.message} record on topic {self.suffix!r}: {exc!r}"[:500]) from exc


def _protobuf(suffix: str, message: type[P], description: str, **outside: str) -> TopicSpec[P]:
    return TopicSpec(suffix, message.DESCRIPTOR.name, description, message.FromString, **outside)


def _json_object(value: bytes) -> dict[str, Any]:
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(f"expected a JSON object, got {type(parsed).__name__}")
    return parsed


INBOX: TopicSpec[dict[str, Any]] = TopicSpec(
    "inbox",
    "MinIO notification JSON (key `bucket/object`)",
    "MinIO bucket notifications (S3 event JSON) for objects dropped into the inbox bucket.",
    _json_object,
    published_outside="MinIO",
)
INTAKE = _protobuf(
    "intake",
    events.AssetSubmitted,
    "Upload events published by other systems for objects they stored; the uploader validates them.",
    published_outside="other systems",
)
UPLOADED = _protobuf("uploaded", events.AssetUploaded, "Validated originals, ready to tag.")
TAGGED = _protobuf("tagged", events.AssetTagged, "Originals with their computer-vision tags.")
STYLIZE_PREVIEW = _protobuf(
    "stylize.preview", events.StyleRequested, "Preview requests for the fast pool (served first)."
)
STYLIZE_FAST = _protobuf(
    "stylize.fast", events.StyleRequested, "Production requests moved to the fast pool by fail-over."
)
STYLIZE_QUALITY = _protobuf("stylize.quality", events.StyleRequested, "Production requests for the high-fidelity pool.")
STYLIZE_RERENDER = _protobuf(
    "stylize.rerender",
    events.StyleRequested,
    "Full-fidelity re-renders of assets served degraded (low priority, quality pool).",
)
STYLIZED = _protobuf("stylized", events.AssetStylized, "Stylized images, ready to export.")
EXPORTED = _protobuf(
    "exported", events.AssetExported, "Renditions written for distribution.", read_outside="your systems"
)
WEBHOOKS = _protobuf(
    "webhooks",
    events.WebhookReported,
    "The outcome of each webhook attempt (delivered, or when the next attempt is due).",
)
# Webhook deliveries waiting to be tried again. Each tier holds one delay (settings
# webhook_retry_delays_s), so a tier's records fall due in the order they were written and waiting
# for the first never holds back one that is due; a receiver that keeps failing moves down the tiers.
WEBHOOK_RETRIES = tuple(
    _protobuf(f"webhooks.retry.{tier}", events.WebhookRetryScheduled, f"Webhook deliveries owed, retry tier {tier}.")
    for tier in (1, 2, 3)
)
POOL_STATS = _protobuf(
    "pool-stats", events.PoolReported, "Stylizer pools' service times, for the router's wait estimates (key: pool)."
)
DEAD_LETTER = _protobuf(
    "dead-letter",
    events.DeadLettered,
    "Messages that failed permanently, with why and where.",
    read_outside="operators",
)

# What an artist waits on for a preview, up to its export (the status view reads the export too):
# consumers of these fetch with the preview fetch wait.
PREVIEW_PATH: tuple[TopicSpec[Any], ...] = (INBOX, INTAKE, UPLOADED, TAGGED, STYLIZE_PREVIEW, STYLIZED)

ALL: tuple[TopicSpec[Any], ...] = (
    INBOX,
    INTAKE,
    UPLOADED,
    TAGGED,
    STYLIZE_PREVIEW,
    STYLIZE_FAST,
    STYLIZE_QUALITY,
    STYLIZE_RERENDER,
    STYLIZED,
    EXPORTED,
    WEBHOOKS,
    *WEBHOOK_RETRIES,
    POOL_STATS,
    DEAD_LETTER,
)

# The topics each stylizer pool consumes, highest priority first.
POOL_TOPICS: dict[str, tuple[TopicSpec[events.StyleRequested], ...]] = {
    "quality": (STYLIZE_QUALITY, STYLIZE_RERENDER),
    "fast": (STYLIZE_PREVIEW, STYLIZE_FAST),
}


@dataclass(frozen=True)
class Topics:
    """Full topic names under one prefix."""

    prefix: str = "atelier."

    def name(self, spec: TopicSpec[Any]) -> str:
        """The full name of a topic."""
        return self.prefix + spec.suffix

    def spec(self, name: str) -> TopicSpec[Any]:
        """The spec of a full topic name; KeyError for a topic Atelier does not define."""
        for spec in ALL:
            if self.prefix + spec.suffix == name:
                return spec
        raise KeyError(f"{name!r} is not an Atelier topic under prefix {self.prefix!r}")

    def all_names(self) -> list[str]:
        """Every topic's full name."""
        return [self.name(spec) for spec in ALL]

    def group(self, name: str) -> str:
        """The consumer group id of a service's subscription (e.g. "tagger", "stylizer-quality")."""
        return self.prefix + name

    @property
    def status_app_id(self) -> str:
        """The faust application id of the asset status view."""
        return self.prefix + "status-view"

    @property
    def status_changelog(self) -> str:
        """The status view table's changelog topic (faust names it; provisioning creates it)."""
        return f"{self.status_app_id}-asset-status-changelog"

    def provisioned_names(self) -> list[str]:
        """Every topic a deployment must create, the internal changelog included."""
        return [*self.all_names(), self.status_changelog]
