"""The router's pure logic: a tagged asset and the brand's guidelines in, a style request out."""

from atelier_router.rules import choose_style
from atelier_router.tiers import TierChoice, TierPolicy
from atelier_shared import BrandGuidelines, NotAllowed, events
from atelier_shared.events import TIER_NAMES


def export_profiles(guidelines: BrandGuidelines) -> list[events.ExportProfile]:
    """The brand's export profiles as event fields."""
    return [
        events.ExportProfile(name=p.name, format=p.format, max_side=p.max_side, quality=p.quality)
        for p in guidelines.export_profiles
    ]


def check_tier(guidelines: BrandGuidelines, tier: events.Tier) -> None:
    """Refuse a tier the brand does not allow (events published directly skip the uploader's check)."""
    name = TIER_NAMES.get(tier)
    if name not in guidelines.tiers:
        raise NotAllowed(
            f"brand {guidelines.brand!r} does not allow tier {name or tier!r}; allowed: {guidelines.tiers}"
        )


def route(
    tagged: events.AssetTagged, guidelines: BrandGuidelines, policy: TierPolicy
) -> tuple[events.StyleRequested, TierChoice]:
    """The style request (style and strength, pool, reasons, export profiles) and the pool choice."""
    check_tier(guidelines, tagged.asset.tier)
    style = choose_style(guidelines, tagged.tags, tagged.asset.requested_style)
    tier_choice = policy.choose(tagged.asset.tier, guidelines)
    decision = events.RouteDecision(
        style=style.style,
        strength=style.strength,
        model_tier=tier_choice.model_tier,
        reason=f"{style.reason}; {tier_choice.reason}",
        rule=style.rule,
        degraded=tier_choice.degraded,
        expected_wait_ms=tier_choice.expected_wait_ms,
        target_ms=tier_choice.target_ms,
    )
    decision.export_profiles.extend(export_profiles(guidelines))
    request = events.StyleRequested(asset=tagged.asset, route=decision)
    request.asset.timeline.routed_at.CopyFrom(events.now_timestamp())
    return request, tier_choice


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
