"""The byte budget of upload bodies: what a body reserves, waiters served in order, a wait that ends
gives everything back."""

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from atelier_shared import ImageTooLarge
from atelier_uploader.api import body_bytes
from atelier_uploader.bodies import BodyBudget, Busy


async def test_uploads_that_do_not_fit_wait_their_turn_in_order() -> None:
    budget = BodyBudget(100, wait_s=5)
    order: list[str] = []
    release = asyncio.Event()

    async def upload(name: str, size: int) -> None:
        async with budget.hold(size):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(upload("first", 70))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(upload(name, size)) for name, size in (("large", 60), ("small", 10))]
    await asyncio.sleep(0.05)
    # The small one would fit, but waits behind the large one: a stream of small uploads never starves a large one.
    assert order == ["first"]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), timeout=5)
    assert order == ["first", "large", "small"]
    async with budget.hold(100):  # Everything was given back.
        pass


async def refused(budget: BodyBudget, size: int) -> bool:
    """Whether a body of `size` is answered busy."""
    try:
        async with budget.hold(size):
            return False
    except Busy:
        return True


async def test_a_wait_that_times_out_or_is_cancelled_gives_its_place_back() -> None:
    budget = BodyBudget(100, wait_s=0.05)
    async with budget.hold(100):
        assert await refused(budget, 1)
    patient = BodyBudget(100, wait_s=60)
    async with patient.hold(100):
        cancelled = asyncio.create_task(patient.hold(50).__aenter__())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert cancelled.cancelled()
    for each in (budget, patient):
        async with asyncio.timeout(1):  # Nobody left in the queue, nothing reserved.
            async with each.hold(100):
                pass


async def test_a_body_larger_than_the_budget_passes_alone() -> None:
    budget = BodyBudget(100, wait_s=0.05)
    async with budget.hold(10_000):
        assert await refused(budget, 1)
    assert not await refused(budget, 100)


def test_a_body_reserves_its_length_or_the_most_it_may_inflate_to() -> None:
    """Regression: a compressed body reserved its Content-Length, though aiohttp inflates it as it is
    read: 50 KB of gzip reserved 50 KB and held 50 MiB, so a burst of them bypassed the budget."""

    def reserved(**headers: str) -> int:
        return body_bytes(make_mocked_request("POST", "/v1/assets", headers=headers), limit=1000)

    assert reserved(**{"Content-Length": "100"}) == 100
    assert reserved(**{"Content-Length": "100", "Content-Encoding": "gzip"}) == 1000
    assert reserved() == 1000  # Chunked: no length said.
    with pytest.raises(ImageTooLarge):  # Refused at once, not after waiting for room.
        reserved(**{"Content-Length": "1001"})
