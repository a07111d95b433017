"""The status document: every topic's event folded in, in whatever order, and what clients see of it."""

import itertools
import json
import random

from atelier_shared import events, topics
from atelier_shared.status import merge_status, with_urls


def _events() -> list[tuple[topics.TopicSpec[object], object]]:
    header = events.AssetHeader(asset_id="a1", brand="acme", tier=events.TIER_PRODUCTION)
    header.timeline.uploaded_at.CopyFrom(events.now_timestamp())
    route = events.RouteDecision(style="tiles", model_tier=events.MODEL_TIER_QUALITY, reason="because")
    rendition = events.Rendition(profile="web", object=events.ObjectRef(bucket="b", key="k"))
    return [
        (topics.UPLOADED, events.AssetUploaded(asset=header)),
        (topics.TAGGED, events.AssetTagged(asset=header, tags=events.Tags(brightness=0.5))),
        (topics.STYLIZE_QUALITY, events.StyleRequested(asset=header, route=route)),
        (topics.STYLIZED, events.AssetStylized(asset=header, route=route, model="tiles-quality@1", batch_size=2)),
        (topics.EXPORTED, events.AssetExported(asset=header, route=route, renditions=[rendition])),
    ]


def test_status_is_the_same_whatever_order_topics_are_read_in() -> None:
    results = []
    for order in itertools.permutations(_events()):
        status = None
        for spec, event in order:
            status = merge_status(status, spec, event)
        results.append(json.dumps(status, sort_keys=True))
    assert len(set(results)) == 1
    final = json.loads(results[0])
    assert final["stage"] == "exported" and final["reached"] == ["uploaded", "tagged", "routed", "stylized", "exported"]
    assert final["route"]["model_tier"] == "quality" and final["stylized"]["batch_size"] == 2


def test_an_asset_looks_exported_only_once_every_earlier_stage_is_in() -> None:
    status = None
    stages = []
    for spec, event in sorted(_events(), key=lambda item: item[0] is not topics.EXPORTED):  # exported first
        status = merge_status(status, spec, event)
        stages.append(status["stage"])
    assert stages == ["unknown", "uploaded", "tagged", "routed", "exported"]
    assert status is not None and status["stylized"]["batch_size"] == 2


def _rerender_events() -> list[tuple[topics.TopicSpec[object], object]]:
    """A degraded render (fast) then its full-fidelity re-render, each stage stamped in order."""
    header = events.AssetHeader(asset_id="a1", brand="acme", tier=events.TIER_PRODUCTION)
    header.timeline.uploaded_at.FromMilliseconds(1_000)
    produced: list[tuple[topics.TopicSpec[object], object]] = []
    for offset, (model, rerender) in enumerate([("tiles-fast@1", False), ("tiles-quality@1", True)]):
        route = events.RouteDecision(
            style="tiles",
            rerender=rerender,
            degraded=not rerender,
            model_tier=events.MODEL_TIER_QUALITY if rerender else events.MODEL_TIER_FAST,
        )
        routed = events.AssetHeader()
        routed.CopyFrom(header)
        routed.timeline.routed_at.FromMilliseconds(2_000 + offset * 10_000)
        produced.append(
            (
                topics.STYLIZE_RERENDER if rerender else topics.STYLIZE_FAST,
                events.StyleRequested(asset=routed, route=route),
            )
        )
        stylized = events.AssetHeader()
        stylized.CopyFrom(routed)
        stylized.timeline.stylized_at.FromMilliseconds(3_000 + offset * 10_000)
        produced.append((topics.STYLIZED, events.AssetStylized(asset=stylized, route=route, model=model)))
        exported = events.AssetHeader()
        exported.CopyFrom(stylized)
        exported.timeline.exported_at.FromMilliseconds(4_000 + offset * 10_000)
        produced.append((topics.EXPORTED, events.AssetExported(asset=exported, route=route, model=model)))
    return produced


def test_a_rerender_wins_whatever_order_its_events_are_folded_in() -> None:
    rng = random.Random(7)
    produced = _rerender_events()
    for _ in range(300):
        order = produced[:]
        rng.shuffle(order)
        status = None
        for spec, event in order:
            status = merge_status(status, spec, event)
        assert status is not None
        assert status["upgraded"] is True and status["stylized"]["model"] == "tiles-quality@1"
        assert status["route"]["model_tier"] == "quality" and status["route"]["rerender"] is True
        assert status["timeline"]["exported_at"].startswith("1970-01-01T00:00:14")


def test_dead_letter_marks_the_asset_failed() -> None:
    spec, uploaded = _events()[0]
    status = merge_status(None, spec, uploaded)
    failed = merge_status(
        status,
        topics.DEAD_LETTER,
        events.DeadLettered(
            asset_id="a1", service="tagger", error_type="invalid_image", error_message="truncated", attempts=1
        ),
    )
    assert failed["stage"] == "failed"
    assert failed["failure"]["error_type"] == "invalid_image" and failed["failure"]["service"] == "tagger"


def _letter(topic: str, failed_at_ms: int) -> events.DeadLettered:
    letter = events.DeadLettered(
        asset_id="a1", brand="acme", service="stylizer", original_topic=topic, error_type="object_missing"
    )
    letter.failed_at.FromMilliseconds(failed_at_ms)
    return letter


def _stamped(stage_ms: dict[str, int]) -> list[tuple[topics.TopicSpec[object], object]]:
    """The pipeline's events with each stage stamped at the given times (ms)."""
    stamped = []
    for spec, event in _events():
        header = event.asset  # type: ignore[attr-defined]
        header.timeline.Clear()
        for field, ms in stage_ms.items():
            if STAGE_FIELDS.index(field) <= STAGE_FIELDS.index(_STAMP_OF[spec.suffix]):
                getattr(header.timeline, field).FromMilliseconds(ms)
        stamped.append((spec, event))
    return stamped


STAGE_FIELDS = ["uploaded_at", "tagged_at", "routed_at", "stylized_at", "exported_at"]
_STAMP_OF = dict(zip(["uploaded", "tagged", "stylize.quality", "stylized", "exported"], STAGE_FIELDS, strict=True))


def test_a_failure_replayed_through_is_resolved_whatever_the_order() -> None:
    """Regression: nothing cleared a dead letter's failure, so an asset replayed after its cause was
    fixed still said `failed` all the way through (the quota counted it as finished; `atelier submit`
    stopped waiting), and once exported, the studio showed the old error on a card with renditions."""
    times = {"uploaded_at": 1_000, "tagged_at": 2_000, "routed_at": 3_000, "stylized_at": 9_000, "exported_at": 9_500}
    failed = _letter("atelier.stylize.quality", failed_at_ms=4_000)  # Replayed at 8 s: stylized at 9 s.
    results = set()
    for order in itertools.permutations([*_stamped(times), (topics.DEAD_LETTER, failed)]):
        status = None
        for spec, event in order:
            status = merge_status(status, spec, event)
        results.add(json.dumps(status, sort_keys=True))
    assert len(results) == 1
    final = json.loads(results.pop())
    assert final["stage"] == "exported" and final["failure"]["resolved"] is True
    status = None
    for spec, event in [*_stamped(times)[:3], (topics.DEAD_LETTER, failed), _stamped(times)[3]]:
        status = merge_status(status, spec, event)
        assert status["stage"] in ("uploaded", "tagged", "routed", "failed", "stylized")
    assert status is not None and status["stage"] == "stylized"  # Open again: the quota counts it.


def test_a_failure_stays_until_the_stage_it_stopped_is_stamped_after_it() -> None:
    times = {"uploaded_at": 1_000, "tagged_at": 2_000, "routed_at": 3_000}
    status = None
    for spec, event in [*_stamped(times)[:3], (topics.DEAD_LETTER, _letter("atelier.stylize.quality", 4_000))]:
        status = merge_status(status, spec, event)
    assert status is not None and status["stage"] == "failed" and status["failure"]["resolved"] is False
    again = merge_status(status, topics.DEAD_LETTER, _letter("atelier.stylize.quality", 8_000))  # Replay failed.
    assert again["stage"] == "failed" and again["failure"]["failed_at"].startswith("1970-01-01T00:00:08")
    unknown = merge_status(status, topics.DEAD_LETTER, _letter("elsewhere", 9_000))
    assert unknown["stage"] == "failed"


def test_clients_see_signed_urls_and_not_the_folds_bookkeeping() -> None:
    status: dict[str, object] = {}
    for spec, event in _events():
        status = merge_status(status, spec, event)
    shown = with_urls(status, lambda bucket, key: f"https://signed/{bucket}/{key}")
    assert "versions" not in shown and "versions" in status
    assert shown["renditions"][0]["object"]["url"] == "https://signed/b/k"  # type: ignore[index]
    assert "url" not in shown["original"]  # type: ignore[operator]  # No key yet: nothing to sign.


def _webhook_report(attempts: int, delivered: bool) -> events.WebhookReported:
    delivery = events.WebhookDelivery(
        url="https://hooks.example/x", attempts=attempts, status_code=200 if delivered else 503
    )
    return events.WebhookReported(
        asset_id="a1", brand="acme", delivery_id="a1:m:render", delivery=delivery, delivered=delivered
    )


def test_each_webhook_delivery_shows_its_latest_attempt_whatever_the_order() -> None:
    reports = [_webhook_report(1, False), _webhook_report(2, False), _webhook_report(3, True)]
    results = set()
    for order in itertools.permutations(reports):
        status = None
        for report in order:
            status = merge_status(status, topics.WEBHOOKS, report)
        assert status is not None
        results.add(json.dumps(status["webhooks"], sort_keys=True))
    assert len(results) == 1
    shown = json.loads(results.pop())["a1:m:render"]
    assert (shown["attempts"], shown["delivered"], shown["status_code"]) == (3, True, 200)


def test_a_webhook_that_gave_up_does_not_fail_an_exported_asset() -> None:
    status = None
    for spec, event in _events():
        status = merge_status(status, spec, event)
    given_up = events.DeadLettered(
        asset_id="a1", brand="acme", original_topic="atelier.webhooks.retry.3", error_type="webhook_undeliverable"
    )
    given_up.failed_at.CopyFrom(events.now_timestamp())
    status = merge_status(status, topics.WEBHOOKS, _webhook_report(5, False))
    status["webhooks"]["a1:m:render"]["next_attempt_at"] = "2026-11-27T03:00:00+00:00"
    status = merge_status(status, topics.DEAD_LETTER, given_up)
    assert status["webhooks"]["a1:m:render"]["next_attempt_at"] is None  # Given up: no next attempt.
    assert status["stage"] == "exported" and "failure" not in status
    assert status["webhook_failure"]["error_type"] == "webhook_undeliverable"


def test_another_brands_event_for_the_same_asset_id_is_refused() -> None:
    """Regression: intake ids are the publishing system's, so two brands could both send "partner-123";
    the fold took the second brand's event into the first's document, switching its brand while keeping
    the first brand's renditions and links, which the second brand could then read."""
    import pytest

    from atelier_shared.status import ForeignAsset

    status = {}
    for spec, event in _events():
        status = merge_status(status, spec, event)
    other = events.AssetHeader(asset_id="a1", brand="lumen", tier=events.TIER_PRODUCTION)
    with pytest.raises(ForeignAsset):
        merge_status(status, topics.UPLOADED, events.AssetUploaded(asset=other))
    with pytest.raises(ForeignAsset):
        merge_status(status, topics.WEBHOOKS, events.WebhookReported(asset_id="a1", brand="lumen"))
    unnamed = events.DeadLettered(asset_id="a1", original_topic="atelier.intake", error_type="invalid_event")
    with pytest.raises(ForeignAsset):  # An intake event naming no brand, for acme's id.
        merge_status(status, topics.DEAD_LETTER, unnamed)
    assert status["brand"] == "acme" and status["renditions"]
