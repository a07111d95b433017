"""Re-render what fail-over served degraded, once the quality pool has spare capacity."""

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter

from atelier_router.lag import PoolEstimate

RERENDERS = Counter("atelier_rerenders_total", "Degraded assets queued for a full-fidelity re-render.", ["brand"])

_REMEMBERED = 100_000


class RerenderGate:
    """Lets re-renders through only while the quality pool is nearly idle and nobody is failed over."""

    def __init__(
        self,
        quality: Callable[[], PoolEstimate],
        any_degraded: Callable[[], bool],
        max_backlog: int,
        poll_s: float,
    ) -> None:
        self._quality = quality
        self._any_degraded = any_degraded
        self._max_backlog = max_backlog
        self._poll_s = poll_s
        self._queued: OrderedDict[str, None] = OrderedDict()

    def spare(self) -> bool:
        """Whether the quality pool has room for low-priority work now."""
        return not self._any_degraded() and self._quality().backlog < self._max_backlog

    async def wait_for_capacity(self) -> None:
        """Return once there is spare capacity (poll on the lag monitor's period)."""
        while not self.spare():
            await asyncio.sleep(self._poll_s)

    def first_time(self, asset_id: str) -> bool:
        """Record an asset as queued; False if this process queued it already (a redelivery)."""
        if asset_id in self._queued:
            return False
        self._queued[asset_id] = None
        while len(self._queued) > _REMEMBERED:
            self._queued.popitem(last=False)
        return True
