"""Brand rules from tags to style, the reasons they give, and the route event."""

import pytest

from atelier_router.failover import FailoverPolicy, FailoverSettings
from atelier_router.lag import LagMonitor, PoolEstimate, PoolWindow, estimate, pool_specs
from atelier_router.rerender import Rerenderer
from atelier_router.routing import request_topic, style_request
from atelier_router.rules import choose_style
from atelier_router.service import Router
from atelier_shared import AtelierSettings, BrandBook, BrandGuidelines, NotAllowed, UnknownStyle, events, topics
from tests.conftest import BRANDS

BOOK = BrandBook.load(BRANDS)


def idle(pool: str) -> PoolEstimate:
    return estimate(pool, PoolWindow(10, 2), None, 0, 1000)


IDLE_POLICY = FailoverPolicy(idle, FailoverSettings())


def route(tagged: events.AssetTagged, guidelines: BrandGuidelines) -> events.StyleRequested:
    style = choose_style(guidelines, tagged.tags, tagged.asset.requested_style)
    return style_request(tagged, guidelines, style, IDLE_POLICY.choose(tagged.asset.tier, guidelines))


def tagged(
    brand: str = "acme", tier: events.Tier = events.TIER_PRODUCTION, style: str = "", **tags: object
) -> events.AssetTagged:
    labels = tags.pop("labels", [])
    event = events.AssetTagged(
        asset=events.AssetHeader(asset_id="a1", brand=brand, tier=tier, requested_style=style),
        tags=events.Tags(**tags),  # type: ignore[arg-type]
    )
    event.tags.labels.extend(labels)  # type: ignore[arg-type]
    return event


def test_first_matching_rule_wins_with_its_strength_and_evidence() -> None:
    choice = choose_style(BOOK.get("acme"), tagged(product_shot=True, brightness=0.1).tags, "")
    assert (choice.style, choice.strength, choice.rule) == ("tiles", pytest.approx(0.8), "product-shots")
    assert "product_shot == True (is True)" in choice.reason


def test_numeric_condition_and_default() -> None:
    guidelines = BOOK.get("acme")
    dark = choose_style(guidelines, tagged(brightness=0.2).tags, "")
    assert dark.rule == "night-scenes" and "brightness < 0.3 (is 0.2)" in dark.reason
    plain = choose_style(guidelines, tagged(brightness=0.6).tags, "")
    assert (plain.style, plain.rule) == ("brush", "") and "brand default" in plain.reason


def test_label_condition() -> None:
    choice = choose_style(BOOK.get("lumen"), tagged(brand="lumen", labels=["vivid", "square"]).tags, "")
    assert choice.style == "brush" and choice.rule == "vivid-images"


def test_category_condition_with_a_confidence_floor() -> None:
    guidelines = BOOK.get("acme")
    shoe = tagged(category="footwear", category_confidence=0.8, brightness=0.6)
    shoe.tags.subjects.add(label="running shoe", confidence=0.7)
    choice = choose_style(guidelines, shoe.tags, "")
    assert (choice.style, choice.rule) == ("brush", "footwear-in-full-paint")
    assert "category == footwear (is 'footwear')" in choice.reason and "confidence >= 0.4 (is 0.8)" in choice.reason
    unsure = choose_style(guidelines, tagged(category="footwear", category_confidence=0.3, brightness=0.6).tags, "")
    assert unsure.rule == ""  # Below the floor: the default.
    building = choose_style(guidelines, tagged(category="building", category_confidence=0.9, brightness=0.6).tags, "")
    assert (building.style, building.rule) == ("tiles", "buildings-in-mosaic")


def test_requested_style_wins_if_the_brand_allows_it() -> None:
    assert choose_style(BOOK.get("acme"), tagged(product_shot=True).tags, "brush").style == "brush"
    with pytest.raises(UnknownStyle, match="not among brand 'acme'"):
        choose_style(BOOK.get("acme"), tagged().tags, "glass")


def test_route_event_records_decision_profiles_and_pool() -> None:
    request = route(tagged(product_shot=True), BOOK.get("acme"))
    assert request_topic(request) is topics.STYLIZE_QUALITY
    decision = request.route
    assert decision.model_tier == events.MODEL_TIER_QUALITY and decision.target_ms == 30000
    assert "product-shots" in decision.reason and "quality pool" in decision.reason
    assert [p.name for p in decision.export_profiles] == ["web", "thumbnail", "print"]
    assert request.asset.timeline.routed_at.seconds > 0

    preview = route(tagged(tier=events.TIER_PREVIEW), BOOK.get("acme"))
    assert request_topic(preview) is topics.STYLIZE_PREVIEW and preview.route.model_tier == events.MODEL_TIER_FAST
    # A preview exports only the brand's small preview rendition; print sizes are production work.
    assert [(p.name, p.format, p.max_side) for p in preview.route.export_profiles] == [("preview", "webp", 512)]


def test_degraded_requests_go_to_the_fast_pools_fail_over_topic() -> None:
    request = route(tagged(), BOOK.get("acme"))
    request.route.degraded = True
    assert request_topic(request) is topics.STYLIZE_FAST


async def test_a_tier_the_brand_does_not_allow_is_refused() -> None:
    production_only = BrandGuidelines(
        brand="solo", default_style="tiles", tiers=["production"], latency_targets_ms={"production": 1000}
    )
    monitor = LagMonitor(AtelierSettings(), pool_specs(topics.Topics()), 1, 10, 2, 1000, 10)  # Never started.
    router = Router(BrandBook({"solo": production_only}), IDLE_POLICY, monitor)
    with pytest.raises(NotAllowed, match="does not allow tier 'preview'"):
        await router.route(tagged(brand="solo", tier=events.TIER_PREVIEW))


def rerendering(max_backlog: int) -> tuple[LagMonitor, Rerenderer]:
    """A lag monitor (never started: no samples) and a re-renderer of its quality pool, always fresh."""
    monitor = LagMonitor(AtelierSettings(), pool_specs(topics.Topics()), 1, 10, 2, 1000, 10)
    rerenderer = Rerenderer(
        BrandBook.load(BRANDS),
        lambda: monitor.estimate("quality"),
        lambda: False,  # Nothing degraded now.
        lambda: True,  # A fresh reading.
        max_backlog,
        monitor.note_rerender,
    )
    return monitor, rerenderer


async def rerender_degraded(rerenderer: Rerenderer, count: int) -> None:
    """Exported assets of acme's that were served degraded, each queued for a re-render."""
    for index in range(count):
        header = events.AssetHeader(asset_id=f"a{index}", brand="acme", tier=events.TIER_PRODUCTION)
        degraded = events.RouteDecision(style="tiles", degraded=True, model_tier=events.MODEL_TIER_FAST)
        assert await rerenderer.rerender(events.AssetExported(asset=header, route=degraded)) is not None


async def test_rerenders_routed_since_the_sample_add_to_the_backlog_not_to_a_new_requests_wait() -> None:
    """Regression: each re-render counted toward the quality pool's lag, the queue a new production
    request waits behind, though the pool serves re-renders after new work: 15 re-renders released at
    once made the next production request of any brand fail over to the fast model for nothing, whose
    degraded output then queued more re-renders."""
    monitor, rerenderer = rerendering(max_backlog=100)
    await rerender_degraded(rerenderer, 15)
    quality = monitor.estimate("quality")
    assert (quality.lag, quality.backlog, quality.expected_wait_ms) == (0, 15, 0)


async def test_the_rerender_that_uses_up_the_spare_room_pauses_them_until_the_next_sample() -> None:
    """Regression: the re-render gate was checked only at lag samples, so between two samples the
    router released re-renders as fast as it could take them from a buffer of up to 10,000, far past
    the backlog the quality pool was allowed."""
    monitor, rerenderer = rerendering(max_backlog=5)
    paused_at: list[int] = []
    rerenderer.on_full = lambda: paused_at.append(monitor.estimate("quality").backlog)
    await rerender_degraded(rerenderer, 5)
    assert paused_at == [5]
