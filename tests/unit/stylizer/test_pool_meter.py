"""The service time a pool reports to the router (what its fail-over estimates rest on)."""

import pytest

from atelier_stylizer.reporting import PoolMeter


def test_batches_one_after_another_count_their_own_time() -> None:
    meter = PoolMeter(smoothing=0.5)
    meter.observe(0.0, 1.0, 4)
    meter.observe(3.0, 5.0, 4)  # Idle between them: not the pool's time.
    assert meter.item_service_ms == pytest.approx(0.5 * 250 + 0.5 * 500)


def test_overlapping_batches_count_the_shared_time_once() -> None:
    """Regression: with two batches in flight each batch's time included the other's, so the pool's
    service time read up to twice what it was (8 images every 5 s read as 8 every 10 s)."""
    meter = PoolMeter(smoothing=0.5)
    meter.observe(0.0, 10.0, 8)
    meter.observe(5.0, 15.0, 8)  # Began while the first ran: it adds 5 s of the pool's time.
    assert meter.item_service_ms == pytest.approx(0.5 * 1250 + 0.5 * 625)
