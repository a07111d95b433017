"""Re-render at full fidelity what fail-over served degraded, while the quality pool has spare capacity.

The gate is flow control, not a wait: on every lag sample the router pauses the subscription of
exported assets while the quality pool has no spare capacity, and resumes it when it has; between
samples, the re-render that uses up the room the last sample showed pauses it too. The handler
never waits, so nothing it holds can stall a rebalance.
"""

from collections.abc import Callable

from cachetools import LRUCache
from prometheus_client import Counter

from atelier_router.lag import PoolEstimate
from atelier_router.routing import needs_rerender, rerender_request
from atelier_shared import BrandBook, events, get_logger

log = get_logger(__name__)

RERENDERS = Counter("atelier_rerenders_total", "Degraded assets queued for a full-fidelity re-render.", ["brand"])


class Rerenderer:
    """Turns exported assets served degraded into re-render requests, each once per router."""

    def __init__(
        self,
        brands: BrandBook,
        quality: Callable[[], PoolEstimate],
        any_degraded: Callable[[], bool],
        fresh: Callable[[], bool],
        max_backlog: int,
        note_rerender: Callable[[str], None],
    ) -> None:
        self._brands = brands
        self._quality = quality
        self._any_degraded = any_degraded
        self._fresh = fresh
        self._max_backlog = max_backlog
        self._note_rerender = note_rerender
        # Assets this router queued already: a redelivered export is not re-rendered twice.
        self._queued: LRUCache[str, bool] = LRUCache(maxsize=100_000)
        # Called when a re-render uses up the spare room (the router pauses the subscription).
        self.on_full: Callable[[], None] = lambda: None

    def spare(self) -> bool:
        """Whether the quality pool has room for low-priority work now (never on a stale reading)."""
        return self._fresh() and not self._any_degraded() and self._quality().backlog < self._max_backlog

    async def rerender(self, exported: events.AssetExported) -> events.StyleRequested | None:
        """AssetExported in; a re-render request out when it was served degraded and not queued before."""
        asset_id = exported.asset.asset_id
        if not needs_rerender(exported, self._brands.get(exported.asset.brand)) or asset_id in self._queued:
            return None
        self._queued[asset_id] = True
        self._note_rerender("quality")
        if not self.spare():  # No more until a sample shows room again.
            self.on_full()
        RERENDERS.labels(exported.asset.brand).inc()
        log.info("re-render queued", asset_id=asset_id, was=exported.model)
        return rerender_request(exported)
