"""The upload bodies one replica holds in memory at once, bounded.

Each upload is read whole before it is validated, stored and published: without a bound, a burst
of large uploads (150 at 40 MB) holds gigabytes and the replica is killed for its memory, losing
every upload in flight. An upload first reserves its size (its Content-Length, or the most a body
may be); uploads that do not fit wait their turn, first come first served, and one that waits too
long is answered 503 `busy` without its body having been read.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge

HELD_BYTES = Gauge("atelier_upload_body_bytes", "Bytes reserved by the upload bodies held in memory.")


class Busy(Exception):
    """No room for another body within the wait."""


class BodyBudget:
    """A byte budget with first-come, first-served waiters."""

    def __init__(self, capacity: int, wait_s: float) -> None:
        self.capacity = capacity
        self._free = capacity
        self._wait_s = wait_s
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Hold `size` bytes (at most the whole budget, so that any body may pass alone) for the block."""
        size = min(size, self.capacity)
        if self._waiters or self._free < size:
            await self._wait(size)
        else:
            self._free -= size
        HELD_BYTES.set(self.capacity - self._free)
        try:
            yield
        finally:
            self._free += size
            self._wake()

    async def _wait(self, size: int) -> None:
        granted = asyncio.get_running_loop().create_future()
        waiter = (size, granted)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._wait_s):
                await asyncio.shield(granted)
        except BaseException as exc:  # Timed out or cancelled: leave the queue, or hand back a grant.
            if granted.done():
                self._free += size
            else:
                granted.cancel()
                self._waiters.remove(waiter)
            self._wake()
            if isinstance(exc, TimeoutError):
                raise Busy(f"the uploads in progress hold this replica's {self.capacity} bytes for bodies") from exc
            raise

    def _wake(self) -> None:
        """Grant waiters in order while the first fits."""
        while self._waiters and self._waiters[0][0] <= self._free:
            size, granted = self._waiters.popleft()
            self._free -= size
            granted.set_result(None)
        HELD_BYTES.set(self.capacity - self._free)
