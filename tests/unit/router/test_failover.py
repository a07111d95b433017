"""Lag to expected wait, and the fail-over decision with hysteresis (a fake clock drives time)."""

import math

import pytest

from atelier_router.failover import FailoverPolicy, FailoverSettings
from atelier_router.lag import STALLED_WAIT_MS, PoolEstimate, PoolWindow, Sample, estimate
from atelier_shared import BrandGuidelines, events

BRAND = BrandGuidelines(brand="acme", default_style="tiles", latency_targets_ms={"preview": 3000, "production": 10_000})


def window(samples: list[tuple[float, int, int]], window_s: float = 10, min_span_s: float = 2) -> PoolWindow:
    pool = PoolWindow(window_s, min_span_s)
    for at, lag, committed in samples:
        pool.add(Sample(at, lag, lag, committed))
    return pool


def test_drain_rate_is_measured_only_while_backlogged_long_enough() -> None:
    assert window([(0, 10, 100), (1, 9, 102), (2, 8, 104), (4, 6, 108)]).drain_rate() == pytest.approx(2.0)
    assert window([(0, 10, 100), (1, 9, 102)]).drain_rate() is None  # Span too short.
    assert window([(0, 0, 100), (2, 5, 100), (4, 3, 102)]).drain_rate() is None  # Idle in the window.
    assert window([(0, 10, 100), (3, 14, 100)]).drain_rate() == 0.0  # Backlogged and stalled.
    assert window([(0, 10, 0), (20, 30, 0), (25, 40, 0), (30, 50, 0)]).trend() == pytest.approx(
        2.0
    )  # Old samples dropped.


def test_expected_wait_from_drain_rate_service_time_or_stall() -> None:
    draining = window([(0, 12, 0), (4, 8, 8)])
    assert estimate("quality", draining, 500, 1, 1000).expected_wait_ms == pytest.approx(8 / 2 * 1000)
    fresh = window([(0, 8, 0)])
    by_service = estimate("quality", fresh, 500, 2, 1000)
    assert (by_service.basis, by_service.expected_wait_ms) == ("service time", pytest.approx(8 * 500 / 2))
    assert estimate("quality", fresh, None, 0, 1000).expected_wait_ms == pytest.approx(8000)
    assert "x 1000 ms / 1 instance" in estimate("quality", fresh, None, 0, 1000).describe()
    stalled = estimate("quality", window([(0, 8, 5), (3, 9, 5)]), 500, 1, 1000)
    assert (stalled.basis, stalled.expected_wait_ms) == ("stalled", STALLED_WAIT_MS)
    assert estimate("quality", window([(0, 0, 5)]), 500, 1, 1000).expected_wait_ms == 0
    assert estimate("quality", fresh, 500, 1, 1000, routed_since_sample=2).lag == 10
    for basis_case in (draining, fresh, window([(0, 8, 5), (3, 9, 5)]), window([(0, 0, 5)])):
        for reported in (None, 250.0):
            assert "expected wait" in estimate("quality", basis_case, reported, 1, 1000).describe()


class Scene:
    """A fake clock and settable pool predictions."""

    def __init__(self) -> None:
        self.now = 0.0
        self.quality_wait_ms = 0.0
        self.fast_wait_ms = 0.0

    def estimates(self, pool: str) -> PoolEstimate:
        wait = self.quality_wait_ms if pool == "quality" else self.fast_wait_ms
        return PoolEstimate(pool, 1, 1, None, 0.0, 100.0, 1, wait, "service time")


def policy(scene: Scene, fresh: bool = True, **overrides: object) -> FailoverPolicy:
    settings = FailoverSettings(overhead_ms=0, min_dwell_s=10, **overrides)  # type: ignore[arg-type]
    return FailoverPolicy(scene.estimates, settings, clock=lambda: scene.now, fresh=lambda: fresh)


def test_moves_production_to_fast_when_the_target_would_be_missed_and_back_after_the_dwell() -> None:
    scene = Scene()
    decide = policy(scene)
    assert decide.choose(events.TIER_PRODUCTION, BRAND).model_tier == events.MODEL_TIER_QUALITY
    scene.quality_wait_ms = 12_000
    choice = decide.choose(events.TIER_PRODUCTION, BRAND)
    assert (choice.degraded, choice.model_tier) == (True, events.MODEL_TIER_FAST)
    assert "fail-over" in choice.reason and "target 10.0 s" in choice.reason
    scene.quality_wait_ms = 6_000  # Below the exit threshold (7 s) ...
    for second in range(1, 10):
        scene.now = second
        assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded  # ... but not for the dwell yet.
    scene.now = 11
    assert not decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    assert decide.switches["acme"] == 2


def test_a_burst_followed_by_silence_leaves_fail_over_without_another_request() -> None:
    scene = Scene()
    decide = policy(scene)
    scene.quality_wait_ms = 12_000
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    scene.quality_wait_ms = 0  # The backlog drains; no request arrives, only lag samples.
    for second in range(1, 12):
        scene.now = second
        decide.reassess()
    assert not decide.is_degraded("acme") and not decide.any_degraded()
    assert decide.switches["acme"] == 2


def test_a_steady_load_at_the_threshold_does_not_flap() -> None:
    scene = Scene()
    decide = policy(scene)
    for tick in range(600):  # Ten minutes of requests, the prediction wobbling around the target.
        scene.now = tick
        scene.quality_wait_ms = 10_000 * (1.05 if tick % 2 else 0.95)
        decide.choose(events.TIER_PRODUCTION, BRAND)
    assert decide.switches["acme"] == 1


def test_a_swinging_load_fails_over_once_and_stays_there() -> None:
    """Regression: the swinging-load test asserted `switches <= 1`, which a policy that never fails over passes."""
    scene = Scene()
    decide = policy(scene)
    for tick in range(600):  # Load swings between heavy and light every 3 s.
        scene.now = tick
        scene.quality_wait_ms = 20_000 if (tick // 3) % 2 else 1_000
        decide.choose(events.TIER_PRODUCTION, BRAND)
    assert decide.switches["acme"] <= math.ceil(600 / 10)  # Bounded by the dwell ...
    # ... and here exactly one: the first heavy spell crosses the target; never calm for a whole dwell, it stays.
    assert decide.switches["acme"] == 1 and decide.is_degraded("acme")


def test_previews_go_to_their_own_topic_and_fast_is_used_only_if_it_does_better() -> None:
    scene = Scene()
    decide = policy(scene)
    scene.quality_wait_ms = 50_000
    scene.fast_wait_ms = 80_000
    preview = decide.choose(events.TIER_PREVIEW, BRAND)
    assert preview.model_tier == events.MODEL_TIER_FAST and not preview.degraded
    assert not decide.choose(events.TIER_PRODUCTION, BRAND).degraded


def test_brands_fail_over_by_their_own_targets_and_it_can_be_disabled() -> None:
    scene = Scene()
    relaxed = BrandGuidelines(
        brand="calm", default_style="tiles", latency_targets_ms={"preview": 3000, "production": 60_000}
    )
    decide = policy(scene)
    scene.quality_wait_ms = 20_000
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    assert not decide.choose(events.TIER_PRODUCTION, relaxed).degraded
    assert not policy(scene, enabled=False).choose(events.TIER_PRODUCTION, BRAND).degraded


def test_a_stale_lag_reading_keeps_production_on_the_quality_pool_and_switches_nothing() -> None:
    """Regression: a dead lag monitor left fail-over deciding on frozen estimates. Stale readings fail safe."""
    scene = Scene()
    scene.quality_wait_ms = 60_000  # The last reading before it went stale said: far over target.
    stale = policy(scene, fresh=False)
    choice = stale.choose(events.TIER_PRODUCTION, BRAND)
    assert (choice.model_tier, choice.degraded) == (events.MODEL_TIER_QUALITY, False)
    assert "stale" in choice.reason
    stale.reassess()
    assert stale.switches == {} and not stale.any_degraded()


def test_a_brand_fails_back_once_the_fast_pool_is_no_sooner() -> None:
    """Regression: a failed-over brand returned only once the quality pool's prediction fell below the exit
    threshold, so under general overload it stayed on a fast pool (previews' too) that had become slower."""
    scene = Scene()
    decide = policy(scene)
    scene.quality_wait_ms = 12_000
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    scene.fast_wait_ms = 13_000  # A little later than quality: within the band, it stays.
    scene.now = 30
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    scene.fast_wait_ms = 15_000  # Everyone piled onto the fast pool; quality is still over target.
    scene.now = 35
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded  # Not for a whole dwell yet ...
    scene.now = 45
    assert not decide.choose(events.TIER_PRODUCTION, BRAND).degraded  # ... then back: quality is sooner.
    assert decide.switches["acme"] == 2


def test_fail_back_needs_a_whole_dwell_of_fresh_readings() -> None:
    """Regression: while the reading was stale nothing reset fail-back's timers, so the first fresh sample
    after a gap failed a brand back on two readings a minute apart."""
    scene, fresh = Scene(), [True]
    settings = FailoverSettings(overhead_ms=0, min_dwell_s=10)
    decide = FailoverPolicy(scene.estimates, settings, clock=lambda: scene.now, fresh=lambda: fresh[0])
    scene.quality_wait_ms = 12_000
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded
    scene.now, scene.fast_wait_ms = 20, 20_000
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded  # The fast pool reads slower from here ...
    fresh[0], scene.now = False, 25
    decide.reassess()  # ... then no reading for a minute.
    fresh[0], scene.now = True, 85
    assert decide.choose(events.TIER_PRODUCTION, BRAND).degraded  # One fresh reading is not a dwell.
    scene.now = 96
    assert not decide.choose(events.TIER_PRODUCTION, BRAND).degraded


def test_pools_equally_overloaded_do_not_flap() -> None:
    scene = Scene()
    decide = policy(scene)
    for tick in range(600):  # Ten minutes, both pools far over target, the fast one within 10% of quality.
        scene.now = tick
        scene.quality_wait_ms = 20_000
        scene.fast_wait_ms = 20_000 * (0.9 if tick % 2 else 1.1)
        decide.choose(events.TIER_PRODUCTION, BRAND)
    assert decide.switches["acme"] == 1


def test_an_exit_ratio_at_or_over_the_enter_ratio_is_refused() -> None:
    from atelier_router.settings import RouterSettings

    with pytest.raises(ValueError, match="failover_exit_ratio"):
        RouterSettings(failover_enter_ratio=0.8, failover_exit_ratio=0.9)  # type: ignore[call-arg]
