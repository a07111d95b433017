"""Lag-aware fail-over: production requests move to the fast pool before a latency target is missed.

For each production request the router predicts its latency on the quality pool: the pool's
expected wait, plus one item's service time, plus the pipeline's other stages. When that exceeds
the brand's target (times the enter ratio) and the fast pool would do better, new production
requests of that brand go to the fast pool, marked degraded. They return to the quality pool only
after the prediction has stayed below the exit ratio of the target for the minimum dwell time,
and never sooner than the dwell after the last switch: hysteresis, so a steady load at the
threshold does not flap. Previews always go to the fast pool's own topic, ahead of production.

Fail-safe: while the lag reading is stale (the monitor has not sampled for a while), the policy
cannot know that the fast pool would do better, so production goes to the quality pool (fidelity
over latency), no brand switches, and the router reports unready until readings resume.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from atelier_router.lag import PoolEstimate
from atelier_shared import BrandGuidelines, events, get_logger
from atelier_shared.events import MODEL_TIER_FAST, MODEL_TIER_QUALITY, TIER_PREVIEW

log = get_logger(__name__)

SWITCHES = Counter("atelier_failover_switches_total", "Fail-over switches by brand and direction.", ["brand", "to"])
DEGRADED = Gauge("atelier_failover_degraded", "1 while a brand's production requests go to the fast pool.", ["brand"])


@dataclass(frozen=True)
class FailoverSettings:
    """Thresholds of the decision."""

    enter_ratio: float = 0.8
    exit_ratio: float = 0.7
    min_dwell_s: float = 10.0
    # Time outside the stylizer queue (tagging, routing, decoding, export) added to predictions.
    overhead_ms: float = 500.0
    enabled: bool = True


@dataclass(frozen=True)
class TierChoice:
    """The pool a request goes to, whether that degrades it, and the numbers behind the choice."""

    model_tier: events.ModelTier
    degraded: bool
    expected_wait_ms: float
    target_ms: float
    reason: str


# A degraded brand fails back once the fast pool predicts this much later than the quality pool.
_FAST_SLOWER_RATIO = 1.2


@dataclass
class _BrandState:
    degraded: bool = False
    changed_at: float = float("-inf")
    calm_since: float | None = None
    # Since when the fast pool has predicted clearly later than the quality pool, while degraded.
    slower_since: float | None = None
    target_ms: float = 0.0


class FailoverPolicy:
    """Chooses the pool per request from the pools' estimates, with hysteresis per brand."""

    def __init__(
        self,
        estimates: Callable[[str], PoolEstimate],
        settings: FailoverSettings,
        clock: Callable[[], float] = time.monotonic,
        fresh: Callable[[], bool] = lambda: True,
    ) -> None:
        self._estimates = estimates
        self._fresh = fresh
        self._settings = settings
        self._clock = clock
        self._states: dict[str, _BrandState] = {}
        self.switches: dict[str, int] = {}

    def predicted_ms(self, estimate: PoolEstimate) -> float:
        """Latency a new request would see on a pool."""
        return estimate.expected_wait_ms + estimate.per_item_ms + self._settings.overhead_ms

    def is_degraded(self, brand: str) -> bool:
        """Whether a brand's production requests currently go to the fast pool."""
        return self._states.get(brand, _BrandState()).degraded

    def any_degraded(self) -> bool:
        """Whether any brand is failed over (the quality pool is under pressure)."""
        return any(state.degraded for state in self._states.values())

    def reassess(self) -> None:
        """Re-evaluate failed-over brands on fresh estimates (run on every lag sample, and every failed one).

        Without it a brand would leave fail-over only when its next request arrives: after a burst
        followed by silence it would stay degraded, and hold back every re-render, indefinitely.
        """
        if not self._fresh():
            # No reading: fail-back's timers restart with the next fresh one, not across the gap.
            for state in self._states.values():
                state.calm_since = state.slower_since = None
            return
        if not self.any_degraded():
            return
        quality_ms = self.predicted_ms(self._estimates("quality"))
        fast_ms = self.predicted_ms(self._estimates("fast"))
        for brand, state in self._states.items():
            if state.degraded:
                self._update(brand, quality_ms, fast_ms, state.target_ms)

    def choose(self, tier: events.Tier, guidelines: BrandGuidelines) -> TierChoice:
        """The pool for a request of this brand's tier, and why."""
        target = float(guidelines.latency_targets_ms[events.tier_name(tier)])  # type: ignore[index]
        fast = self._estimates("fast")
        if tier == TIER_PREVIEW:
            return TierChoice(
                MODEL_TIER_FAST,
                False,
                fast.expected_wait_ms,
                target,
                "preview tier: fast pool, served ahead of production",
            )
        quality = self._estimates("quality")
        if not self._fresh():
            reason = "production tier: quality pool (lag reading stale: fail-over suspended until it resumes)"
            return TierChoice(MODEL_TIER_QUALITY, False, quality.expected_wait_ms, target, reason)
        quality_ms, fast_ms = self.predicted_ms(quality), self.predicted_ms(fast)
        if self._update(guidelines.brand, quality_ms, fast_ms, target):
            return TierChoice(
                MODEL_TIER_FAST,
                True,
                fast.expected_wait_ms,
                target,
                f"fail-over: {quality.describe()}, predicted {quality_ms / 1000:.1f} s over "
                f"{guidelines.brand}'s production target {target / 1000:.1f} s; "
                f"fast pool predicted {fast_ms / 1000:.1f} s",
            )
        return TierChoice(
            MODEL_TIER_QUALITY,
            False,
            quality.expected_wait_ms,
            target,
            f"production tier: quality pool ({quality.describe()}, predicted {quality_ms / 1000:.1f} s "
            f"within target {target / 1000:.1f} s)",
        )

    def _update(self, brand: str, quality_ms: float, fast_ms: float, target: float) -> bool:
        if not self._settings.enabled:
            return False
        state = self._states.setdefault(brand, _BrandState())
        state.target_ms = target
        now = self._clock()
        settled = now - state.changed_at >= self._settings.min_dwell_s
        if not state.degraded:
            if quality_ms > target * self._settings.enter_ratio and fast_ms < quality_ms and settled:
                self._switch(brand, state, True, now, quality_ms, target)
        elif self._fast_slower(state, quality_ms, fast_ms, now) and settled:
            # Both pools overloaded, the fast one (previews' too) the later: degraded output buys nothing.
            self._switch(brand, state, False, now, quality_ms, target)
        elif quality_ms < target * self._settings.exit_ratio:
            if state.calm_since is None:
                state.calm_since = now
            if now - state.calm_since >= self._settings.min_dwell_s and settled:
                self._switch(brand, state, False, now, quality_ms, target)
        else:
            state.calm_since = None
        return state.degraded

    def _fast_slower(self, state: _BrandState, quality_ms: float, fast_ms: float, now: float) -> bool:
        """Whether the fast pool has predicted a fifth later than the quality pool for a whole dwell (a
        band and a time, as for the exit ratio, so that pools trading load do not flap)."""
        if fast_ms < quality_ms * _FAST_SLOWER_RATIO:
            state.slower_since = None
            return False
        if state.slower_since is None:
            state.slower_since = now
        return now - state.slower_since >= self._settings.min_dwell_s

    def _switch(
        self, brand: str, state: _BrandState, degraded: bool, now: float, quality_ms: float, target: float
    ) -> None:
        state.degraded = degraded
        state.changed_at = now
        state.calm_since = state.slower_since = None
        self.switches[brand] = self.switches.get(brand, 0) + 1
        SWITCHES.labels(brand, "fast" if degraded else "quality").inc()
        DEGRADED.labels(brand).set(1 if degraded else 0)
        log.info(
            "fail-over" if degraded else "fail-back",
            brand=brand,
            predicted_ms=round(quality_ms),
            target_ms=target,
        )
