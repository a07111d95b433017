"""An asset's status, as `GET /v1/assets/{id}` answers it: every topic's event folded into one document (pure).

The status service keeps these documents in a table; the uploader folds the first event itself to
answer for an upload it just accepted. The fold is order-independent, because the view reads its
topics independently: each section keeps the newest version by the event's own timeline stamp.
"""

from collections.abc import Callable
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from atelier_shared import events, topics
from atelier_shared.topics import TopicSpec

STAGES = ("uploaded", "tagged", "routed", "stylized", "exported")
# Stages after which nothing more happens to an asset.
FINAL_STAGES = frozenset({"exported", "failed"})
_STAGE_OF_TOPIC = {
    topics.UPLOADED.suffix: "uploaded",
    topics.TAGGED.suffix: "tagged",
    topics.STYLIZE_PREVIEW.suffix: "routed",
    topics.STYLIZE_FAST.suffix: "routed",
    topics.STYLIZE_QUALITY.suffix: "routed",
    topics.STYLIZE_RERENDER.suffix: "routed",
    topics.STYLIZED.suffix: "stylized",
    topics.EXPORTED.suffix: "exported",
}
STATUS_TOPICS = tuple(
    spec for spec in topics.ALL if spec.suffix in _STAGE_OF_TOPIC or spec in (topics.DEAD_LETTER, topics.WEBHOOKS)
)
_WEBHOOK_RETRY_SUFFIXES = tuple(spec.suffix for spec in topics.WEBHOOK_RETRIES)
# The timeline stamp that handling a record of each topic sets: a failure on the topic is over once
# that stamp is newer (the record went through on a replay). The service that failed sets both (one
# replica or another), and a replay comes long after its failure, so clock skew does not decide it.
# Failures elsewhere (the webhooks' and re-renders' readers of `exported`) set no stamp: they stay.
_STAMP_AFTER_TOPIC = {
    topics.INBOX.suffix: "uploaded_at",
    topics.INTAKE.suffix: "uploaded_at",
    topics.UPLOADED.suffix: "tagged_at",
    topics.TAGGED.suffix: "routed_at",
    topics.STYLIZE_PREVIEW.suffix: "stylized_at",
    topics.STYLIZE_FAST.suffix: "stylized_at",
    topics.STYLIZE_QUALITY.suffix: "stylized_at",
    topics.STYLIZE_RERENDER.suffix: "stylized_at",
    topics.STYLIZED.suffix: "exported_at",
}
# The topics other systems publish uploads to.
_ENTRY_SUFFIXES = (topics.INTAKE.suffix, topics.INBOX.suffix)


def _as_dict(message: Message) -> dict[str, Any]:
    return dict(MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


def _header_fields(header: events.AssetHeader) -> dict[str, Any]:
    return {
        "asset_id": header.asset_id,
        "brand": header.brand,
        "tier": events.tier_name(header.tier),
        "requested_style": header.requested_style,
        "source": events.source_name(header.source),
        "source_uri": header.source_uri,
        "original": _as_dict(header.original),
    }


def _route_fields(route: events.RouteDecision) -> dict[str, Any]:
    fields = _as_dict(route)
    fields["model_tier"] = events.model_tier_name(route.model_tier)
    return fields


def _newer(status: dict[str, Any], section: str, stamp: Any) -> bool:
    """Whether an event's stamp for a section is at least as new as what the status holds (and record it)."""
    stamp_ms = events.timestamp_ms(stamp)
    versions = status.setdefault("versions", {})
    if stamp_ms < versions.get(section, 0.0):
        return False
    versions[section] = stamp_ms
    return True


class ForeignAsset(Exception):
    """An event of one brand for an asset id another brand's document holds."""


def merge_status(status: dict[str, Any] | None, spec: TopicSpec[Any], event: Any) -> dict[str, Any]:
    """Fold one event into an asset's status; ForeignAsset for another brand's event.

    Ids are global, and systems publishing intake events choose their own: two brands may both send
    "partner-123". The first brand's document keeps it; the other's events are refused, so neither
    brand ever sees the other's tags, renditions or links in it.

    Order-independent: topics are read independently, so a re-render's `exported` may arrive
    before its `stylized`, or an old event after a new one. Each section keeps the newest
    version by the event's own timeline stamp (route: routed_at, stylized: stylized_at, export:
    exported_at), and each timeline field keeps its latest value.
    """
    brand = event.brand if spec in (topics.WEBHOOKS, topics.DEAD_LETTER) else event.asset.brand
    # A dead letter of what came from outside names no brand when none was readable in it: it may not
    # touch a brand's document either.
    from_outside = spec is topics.DEAD_LETTER and event.original_topic.endswith(_ENTRY_SUFFIXES)
    if status and (brand or from_outside) and status.get("brand") not in (None, "", brand):
        raise ForeignAsset(f"a {brand!r} event for an asset id of brand {status['brand']!r}")
    status = dict(status or {})
    status["versions"] = dict(status.get("versions", {}))
    reached = set(status.get("reached", []))
    if spec is topics.WEBHOOKS:
        status.setdefault("asset_id", event.asset_id)
        status.setdefault("brand", event.brand)
        _merge_webhook(status, event)
    elif spec is topics.DEAD_LETTER:
        _merge_failure(status, event)
    else:
        timeline = event.asset.timeline
        reached.add(_STAGE_OF_TOPIC[spec.suffix])
        status.update(_header_fields(event.asset))
        status["timeline"] = {
            name: value for name, value in {**status.get("timeline", {}), **_latest_timeline(status, timeline)}.items()
        }
        if spec is topics.TAGGED and _newer(status, "tags", timeline.tagged_at):
            status["tags"] = _as_dict(event.tags)
        if hasattr(event, "route") and _newer(status, "route", timeline.routed_at):
            status["route"] = _route_fields(event.route)
        if spec is topics.STYLIZED and _newer(status, "stylized", timeline.stylized_at):
            status["stylized"] = {
                "model": event.model,
                "backend": event.backend,
                "object": _as_dict(event.stylized),
                "timings": _as_dict(event.timings),
                "batch_size": event.batch_size,
                "cache_hit": event.cache_hit,
            }
        if spec is topics.EXPORTED and _newer(status, "export", timeline.exported_at):
            status["renditions"] = [_as_dict(rendition) for rendition in event.renditions]
            status["export"] = {"model": event.model}
            status["upgraded"] = bool(event.route.rerender)
    status["reached"] = sorted(reached, key=STAGES.index)
    status.setdefault("timeline", {})
    versions = status["versions"].items()
    stamps = {key.removeprefix("timeline."): ms for key, ms in versions if key.startswith("timeline.")}
    status["stage_ms"] = events.stage_durations_ms(stamps)
    status["stage"] = _stage(status, reached)
    return status


def _stage(status: dict[str, Any], reached: set[str]) -> str:
    """The furthest stage, or failed while a failure is not resolved and the asset not exported
    (marking the failure resolved or not)."""
    furthest = _furthest_complete(reached)
    if "failure" not in status:
        return furthest
    status["failure"] = {**status["failure"], "resolved": _failure_resolved(status)}
    return furthest if status["failure"]["resolved"] or furthest == "exported" else "failed"


def _failure_resolved(status: dict[str, Any]) -> bool:
    """Whether the failed record went through after all (replayed once its cause was fixed): the
    stage it leads to was stamped after the failure. A failure on a topic of unknown kind stays."""
    topic = status["failure"]["topic"]
    stamp = next((name for suffix, name in _STAMP_AFTER_TOPIC.items() if topic.endswith(suffix)), None)
    return stamp is not None and status["versions"].get(f"timeline.{stamp}", 0.0) > status["versions"]["failure"]


def _merge_failure(status: dict[str, Any], event: events.DeadLettered) -> None:
    """A dead letter: the asset's failure, or (for a webhook that gave up) its delivery's."""
    status.setdefault("asset_id", event.asset_id)
    status.setdefault("brand", event.brand)
    # A webhook that gave up leaves the asset exported: its failure is the delivery's, not the asset's.
    section = "webhook_failure" if event.original_topic.endswith(_WEBHOOK_RETRY_SUFFIXES) else "failure"
    if section == "webhook_failure":  # Given up: no delivery still waiting has a next attempt.
        status["webhooks"] = {
            delivery_id: {**shown, "next_attempt_at": None} if not shown["delivered"] else shown
            for delivery_id, shown in status.get("webhooks", {}).items()
        }
    if _newer(status, section, event.failed_at):
        status[section] = {
            "service": event.service,
            "error_type": event.error_type,
            "message": event.error_message,
            "attempts": event.attempts,
            "topic": event.original_topic,
            "partition": event.partition,
            "offset": event.offset,
            "failed_at": events.timestamp_iso(event.failed_at),
        }


def _merge_webhook(status: dict[str, Any], report: events.WebhookReported) -> None:
    """Keep each delivery's latest attempt (the most attempts; once delivered, delivered stays)."""
    deliveries = dict(status.get("webhooks", {}))
    held = deliveries.get(report.delivery_id, {})
    newer = report.delivery.attempts >= held.get("attempts", 0)
    if not held or (report.delivered and not held["delivered"]) or (newer and not held["delivered"]):
        deliveries[report.delivery_id] = {
            "url": report.delivery.url,
            "attempts": report.delivery.attempts,
            "delivered": report.delivered,
            "status_code": report.delivery.status_code,
            "error": report.delivery.error,
            "attempted_at": events.timestamp_iso(report.attempted_at),
            "next_attempt_at": events.timestamp_iso(report.next_attempt_at),
        }
    status["webhooks"] = deliveries


def _furthest_complete(reached: set[str]) -> str:
    """The furthest stage whose predecessors are folded in too.

    An `exported` read before its `stylized` does not make the asset look exported with its
    stylization missing: the stage moves on once every earlier stage's event is in.
    """
    furthest = "unknown"
    for stage in STAGES:
        if stage not in reached:
            break
        furthest = stage
    return furthest


def _latest_timeline(status: dict[str, Any], timeline: events.Timeline) -> dict[str, str]:
    """Timeline fields of an event that are newer than the status's (each field keeps its latest)."""
    latest = {}
    for field in timeline.DESCRIPTOR.fields:
        stamp = getattr(timeline, field.name)
        if not (stamp.seconds or stamp.nanos):
            continue
        key = f"timeline.{field.name}"
        if events.timestamp_ms(stamp) >= status["versions"].get(key, 0.0):
            status["versions"][key] = events.timestamp_ms(stamp)
            latest[field.name] = events.timestamp_iso(stamp)
    return latest  # type: ignore[return-value]


def with_urls(status: dict[str, Any], sign: Callable[[str, str], str]) -> dict[str, Any]:
    """The document clients see: `url` (from `sign(bucket, key)`) on every object, the fold's bookkeeping left out."""

    def signed(ref: dict[str, Any]) -> dict[str, Any]:
        return {**ref, "url": sign(ref["bucket"], ref["key"])} if ref.get("bucket") and ref.get("key") else ref

    status = dict(status)
    status.pop("versions", None)
    status.pop("retention", None)  # The status view's own bookkeeping.
    if "original" in status:
        status["original"] = signed(status["original"])
    if "stylized" in status:
        status["stylized"] = {**status["stylized"], "object": signed(status["stylized"].get("object", {}))}
    if "renditions" in status:
        status["renditions"] = [{**item, "object": signed(item.get("object", {}))} for item in status["renditions"]]
    return status
