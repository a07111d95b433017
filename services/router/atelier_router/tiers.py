"""Which stylizer pool serves a request: the seam where lag-aware fail-over plugs in."""

from dataclasses import dataclass
from typing import Protocol

from atelier_shared import BrandGuidelines, events, topics
from atelier_shared.events import MODEL_TIER_FAST, MODEL_TIER_QUALITY, TIER_NAMES, TIER_PREVIEW


@dataclass(frozen=True)
class TierChoice:
    """The pool, its topic, and the numbers behind the choice."""

    model_tier: events.ModelTier
    topic: topics.TopicSpec
    degraded: bool
    expected_wait_ms: float
    target_ms: float
    reason: str


class TierPolicy(Protocol):
    """Chooses the pool for a request of a brand's tier."""

    def choose(self, tier: events.Tier, guidelines: BrandGuidelines) -> TierChoice: ...


class StaticTierPolicy:
    """Previews to the fast pool, production to the quality pool, whatever the load."""

    def choose(self, tier: events.Tier, guidelines: BrandGuidelines) -> TierChoice:
        target = float(guidelines.latency_targets_ms[TIER_NAMES[tier]])  # type: ignore[index]
        if tier == TIER_PREVIEW:
            return TierChoice(MODEL_TIER_FAST, topics.STYLIZE_PREVIEW, False, 0.0, target, "preview tier: fast pool")
        return TierChoice(
            MODEL_TIER_QUALITY, topics.STYLIZE_QUALITY, False, 0.0, target, "production tier: quality pool"
        )
