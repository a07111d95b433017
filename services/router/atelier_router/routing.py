"""The router's pure logic: a tagged asset, the brand's guidelines and the pool choice in, a style request out."""

from atelier_router.failover import TierChoice
from atelier_router.rules import StyleChoice
from atelier_shared import BrandGuidelines, TopicSpec, events, topics

# The topics a routed style request goes to (re-renders have their own, STYLIZE_RERENDER).
REQUEST_TOPICS = (topics.STYLIZE_PREVIEW, topics.STYLIZE_FAST, topics.STYLIZE_QUALITY)


def export_profiles(guidelines: BrandGuidelines, tier: int) -> list[events.ExportProfile]:
    """The renditions a tier gets, as event fields: a preview only the brand's preview profile."""
    specs = [guidelines.preview_profile] if tier == events.TIER_PREVIEW else guidelines.export_profiles
    return [events.ExportProfile(name=p.name, format=p.format, max_side=p.max_side, quality=p.quality) for p in specs]


def style_request(
    tagged: events.AssetTagged, guidelines: BrandGuidelines, style: StyleChoice, pool: TierChoice
) -> events.StyleRequested:
    """The style request: style and strength, pool, the reasons in words, export profiles."""
    decision = events.RouteDecision(
        style=style.style,
        strength=style.strength,
        model_tier=pool.model_tier,
        reason=f"{style.reason}; {pool.reason}",
        rule=style.rule,
        degraded=pool.degraded,
        expected_wait_ms=pool.expected_wait_ms,
        target_ms=pool.target_ms,
    )
    decision.export_profiles.extend(export_profiles(guidelines, tagged.asset.tier))
    request = events.StyleRequested(asset=tagged.asset, route=decision)
    request.asset.timeline.routed_at.CopyFrom(events.now_timestamp())
    return request


def request_topic(request: events.StyleRequested) -> TopicSpec[events.StyleRequested]:
    """Where a routed style request goes: previews first, fail-over to the fast pool, else full fidelity."""
    if request.asset.tier == events.TIER_PREVIEW:
        return topics.STYLIZE_PREVIEW
    return topics.STYLIZE_FAST if request.route.degraded else topics.STYLIZE_QUALITY


def rerender_request(exported: events.AssetExported) -> events.StyleRequested:
    """A full-fidelity re-render of an asset that fail-over served with the fast model."""
    route = events.RouteDecision()
    route.CopyFrom(exported.route)
    route.model_tier = events.MODEL_TIER_QUALITY
    route.degraded = False
    route.rerender = True
    route.reason = f"re-render at full fidelity (served degraded by {exported.model}); was: {exported.route.reason}"
    request = events.StyleRequested(asset=exported.asset, route=route)
    request.asset.timeline.routed_at.CopyFrom(events.now_timestamp())
    for stage in ("stylized_at", "exported_at"):
        request.asset.timeline.ClearField(stage)  # type: ignore[arg-type]
    return request


def needs_rerender(exported: events.AssetExported, guidelines: BrandGuidelines) -> bool:
    """Served degraded, not itself a re-render, and the brand wants full fidelity back."""
    return exported.route.degraded and not exported.route.rerender and guidelines.rerender
