import asyncio
import time
from pathlib import Path

import pytest

from atelier_shared import BrandBook
from atelier_uploader.access import RECENT_S, InFlight, Quotas, Reading, Refused

BRANDS = Path(__file__).parents[3] / "deploy" / "brands"


async def submit(quotas: Quotas, asset_id: str) -> None:
    """As the API does around validating an upload."""
    reading = await quotas.precheck("acme", asset_id)
    await quotas.admit("acme", asset_id, reading)


async def test_a_slow_status_answer_does_not_queue_the_brands_other_uploads() -> None:
    """Regression: admission asked the status service (up to 1 s) while holding the brand's lock, so
    while it answered slowly a brand's uploads were admitted one at a time. Here the status service
    answers only once two questions are open at once: under the old lock the second never began."""
    both_asking = asyncio.Barrier(2)

    async def in_flight(brand: str, limit: int) -> InFlight:
        await both_asking.wait()
        return InFlight(open=0, asset_ids=frozenset())

    quotas = Quotas(BrandBook.load(BRANDS), in_flight)
    async with asyncio.timeout(5):
        await asyncio.gather(submit(quotas, "first"), submit(quotas, "second"))


async def test_uploads_admitted_at_once_count_against_each_other() -> None:
    """Both status answers predate both admissions: this replica's own count keeps the quota."""
    quota = BrandBook.load(BRANDS).get("acme").limits.in_flight
    open_ids = frozenset(f"open-{n}" for n in range(quota - 1))
    both_asking = asyncio.Barrier(2)

    async def in_flight(brand: str, limit: int) -> InFlight:
        await both_asking.wait()
        return InFlight(open=len(open_ids), asset_ids=open_ids)

    quotas = Quotas(BrandBook.load(BRANDS), in_flight)
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(submit(quotas, "first"), submit(quotas, "second"), return_exceptions=True)
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert len(refused) == 1 and isinstance(refused[0], Refused) and refused[0].code == "quota_exceeded"


async def test_a_reading_older_than_the_recent_window_is_taken_again() -> None:
    """From a review: admission counted with the reading taken before validation, and this replica's
    admissions count for RECENT_S only; an upload queued for validation longer than that was admitted
    against a reading that knew none of the admissions made meanwhile. Such a reading is read again."""
    quota = BrandBook.load(BRANDS).get("acme").limits.in_flight
    answers = [frozenset(), frozenset(f"open-{n}" for n in range(quota))]

    async def in_flight(brand: str, limit: int) -> InFlight:
        ids = answers.pop(0)
        return InFlight(open=len(ids), asset_ids=ids)

    quotas = Quotas(BrandBook.load(BRANDS), in_flight)
    reading = await quotas.precheck("acme", "slow")
    validated_for_long = Reading(reading.in_flight, reading.at - RECENT_S - 1)
    with pytest.raises(Refused):
        await quotas.admit("acme", "slow", validated_for_long)


async def test_a_stale_reading_is_kept_when_the_status_service_does_not_answer_again() -> None:
    """From a review: a re-read that got no answer replaced a reading that knew the brand was over its
    quota, and admission then counted only this replica's own recent uploads."""
    quota = BrandBook.load(BRANDS).get("acme").limits.in_flight
    full = frozenset(f"open-{n}" for n in range(quota))
    answers: list[InFlight | None] = [InFlight(open=0, asset_ids=frozenset()), None]

    async def in_flight(brand: str, limit: int) -> InFlight | None:
        return answers.pop(0)

    quotas = Quotas(BrandBook.load(BRANDS), in_flight)
    await quotas.precheck("acme", "slow")
    knew_it_full = Reading(InFlight(open=len(full), asset_ids=full), time.monotonic() - RECENT_S - 1)
    with pytest.raises(Refused):
        await quotas.admit("acme", "slow", knew_it_full)
