"""Router wiring: brand guidelines, tier policy, one style request per tagged asset."""

from prometheus_client import Counter

from atelier_shared import (
    BatchPolicy,
    BrandBook,
    ConsumerConfig,
    Delivery,
    Outgoing,
    PipelineService,
    events,
    per_record,
    topics,
)
from atelier_shared.events import MODEL_TIER_NAMES, TIER_NAMES
from opentelemetry import trace

from atelier_router import handlers
from atelier_router.settings import RouterSettings
from atelier_router.tiers import StaticTierPolicy, TierPolicy

ROUTE_DECISIONS = Counter(
    "atelier_route_decisions_total",
    "Routing decisions by brand, tier, pool, how the style was chosen, and whether degraded.",
    ["brand", "tier", "model_tier", "style_source", "degraded"],
)


def build(settings: RouterSettings, policy: TierPolicy | None = None) -> PipelineService:
    """The router service."""
    brands = BrandBook.load(settings.brands_dir)
    names = settings.topics
    tier_policy = policy or StaticTierPolicy()

    async def handle(delivery: Delivery) -> list[Outgoing]:
        tagged: events.AssetTagged = delivery.event
        guidelines = brands.get(tagged.asset.brand)
        request, choice = handlers.route(tagged, guidelines, tier_policy)
        decision = request.route
        trace.get_current_span().set_attributes(
            {
                "atelier.route.style": decision.style,
                "atelier.route.strength": decision.strength,
                "atelier.route.model_tier": MODEL_TIER_NAMES[decision.model_tier],
                "atelier.route.reason": decision.reason,
                "atelier.route.rule": decision.rule,
                "atelier.route.degraded": decision.degraded,
                "atelier.route.expected_wait_ms": decision.expected_wait_ms,
                "atelier.route.target_ms": decision.target_ms,
            }
        )
        ROUTE_DECISIONS.labels(
            tagged.asset.brand,
            TIER_NAMES.get(tagged.asset.tier, "unspecified"),
            MODEL_TIER_NAMES[decision.model_tier],
            "requested" if tagged.asset.requested_style else ("rule" if decision.rule else "default"),
            str(decision.degraded).lower(),
        ).inc()
        return [Outgoing(names.name(choice.topic), tagged.asset.asset_id, request)]

    config = ConsumerConfig(
        group_id=names.group("router"),
        topics={names.name(topics.TAGGED): 0},
        batch=BatchPolicy(max_items=32),
    )
    return PipelineService("router", settings, config, per_record(handle), store=None)
