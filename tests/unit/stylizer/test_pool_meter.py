"""The service time a pool reports to the router (what its fail-over estimates rest on)."""

import pytest

from atelier_stylizer.reporting import PoolMeter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_batches_one_after_another_count_their_own_time() -> None:
    clock = Clock()
    meter = PoolMeter(smoothing=0.5, clock=clock)
    first = meter.begin()
    clock.now = 1.0
    assert meter.end(first, 4) == pytest.approx(1.0)
    clock.now = 3.0  # Idle: not the pool's time.
    second = meter.begin()
    clock.now = 5.0
    assert meter.end(second, 4) == pytest.approx(2.0)
    assert meter.item_service_ms == pytest.approx(0.5 * 250 + 0.5 * 500)


def test_overlapping_batches_share_the_time_they_overlap_whatever_order_they_end_in() -> None:
    """Regression: with two batches in flight each batch's time included the other's, so the pool's
    service time read up to twice what it was; a first fix, crediting a batch only from when the one
    before it finished, lost time when a later batch ended first (and read 0 for two ending together)."""
    clock = Clock()
    meter = PoolMeter(clock=clock)
    long = meter.begin()
    clock.now = 2.0
    short = meter.begin()
    clock.now = 3.0
    assert meter.end(short, 1) == pytest.approx(0.5)  # Shared one second with the long batch.
    clock.now = 10.0
    assert meter.end(long, 8) == pytest.approx(2.0 + 0.5 + 7.0)  # Ten seconds of the pool's in all.

    together = [meter.begin(), meter.begin()]
    clock.now = 14.0
    assert [meter.end(share, 4) for share in together] == [pytest.approx(2.0), pytest.approx(2.0)]


def test_a_failed_batch_gives_no_sample_and_leaves_the_others_share_right() -> None:
    clock = Clock()
    meter = PoolMeter(clock=clock)
    failed, ok = meter.begin(), meter.begin()
    clock.now = 2.0
    meter.end(failed, 0)
    clock.now = 3.0
    assert meter.end(ok, 2) == pytest.approx(2.0)
    assert meter.item_service_ms == pytest.approx(1000.0)
