"""Atelier's Kafka topics and the message type each carries: the one place that defines them.

Every topic is keyed by asset id (the inbox notifications, which MinIO publishes, are keyed by
"bucket/object"). Names are a deployment-wide prefix (default "atelier.") plus the suffixes below;
tests give each run its own prefix.
"""

from dataclasses import dataclass

from google.protobuf.message import Message

from atelier_shared import events
from atelier_shared.events import MODEL_TIER_FAST, MODEL_TIER_QUALITY, ModelTier


@dataclass(frozen=True)
class TopicSpec:
    """A topic: its name after the prefix, its message type, and what it is for."""

    suffix: str
    # None for the inbox notifications: S3 event JSON published by MinIO itself.
    message: type[Message] | None
    description: str


INBOX = TopicSpec(
    "inbox",
    None,
    "MinIO bucket notifications (S3 event JSON) for objects dropped into the inbox bucket.",
)
INTAKE = TopicSpec(
    "intake",
    events.AssetSubmitted,
    "Upload events published by other systems for objects they stored; the uploader validates them.",
)
UPLOADED = TopicSpec("uploaded", events.AssetUploaded, "Validated originals, ready to tag.")
TAGGED = TopicSpec("tagged", events.AssetTagged, "Originals with their computer-vision tags.")
STYLIZE_PREVIEW = TopicSpec(
    "stylize.preview", events.StyleRequested, "Preview requests for the fast pool (served first)."
)
STYLIZE_FAST = TopicSpec(
    "stylize.fast", events.StyleRequested, "Production requests moved to the fast pool by fail-over."
)
STYLIZE_QUALITY = TopicSpec("stylize.quality", events.StyleRequested, "Production requests for the high-fidelity pool.")
STYLIZE_RERENDER = TopicSpec(
    "stylize.rerender",
    events.StyleRequested,
    "Full-fidelity re-renders of assets served degraded (low priority, quality pool).",
)
STYLIZED = TopicSpec("stylized", events.AssetStylized, "Stylized images, ready to export.")
EXPORTED = TopicSpec("exported", events.AssetExported, "Renditions written for distribution.")
POOL_STATS = TopicSpec(
    "pool-stats", events.PoolReported, "Stylizer pools' service times, for the router's wait estimates."
)
DEAD_LETTER = TopicSpec("dead-letter", events.DeadLettered, "Messages that failed permanently, with why and where.")

ALL: tuple[TopicSpec, ...] = (
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
    POOL_STATS,
    DEAD_LETTER,
)

# The topics each stylizer pool consumes, highest priority first.
POOL_TOPICS: dict[ModelTier, tuple[TopicSpec, ...]] = {
    MODEL_TIER_QUALITY: (STYLIZE_QUALITY, STYLIZE_RERENDER),
    MODEL_TIER_FAST: (STYLIZE_PREVIEW, STYLIZE_FAST),
}


@dataclass(frozen=True)
class Topics:
    """Full topic names under one prefix."""

    prefix: str = "atelier."

    def name(self, spec: TopicSpec) -> str:
        """The full name of a topic."""
        return self.prefix + spec.suffix

    def spec(self, name: str) -> TopicSpec:
        """The spec of a full topic name; KeyError for a topic Atelier does not define."""
        for spec in ALL:
            if self.prefix + spec.suffix == name:
                return spec
        raise KeyError(f"{name!r} is not an Atelier topic under prefix {self.prefix!r}")

    def all_names(self) -> list[str]:
        """Every topic's full name."""
        return [self.name(spec) for spec in ALL]

    def group(self, service: str) -> str:
        """The consumer group id of a service (or stylizer pool) under this prefix."""
        return self.prefix + service

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
