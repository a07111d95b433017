"""The pool's reports to the router: per-item service time and throughput, on the pool-stats topic."""

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from atelier_shared import Publisher, TransientError, events, get_logger

log = get_logger(__name__)


@dataclass
class PoolMeter:
    """This instance's per-item service time (exponentially weighted) and throughput."""

    smoothing: float = 0.3
    item_service_ms: float = 0.0
    _items: int = 0
    _batches: int = 0
    _since: float = field(default_factory=time.monotonic)
    _last_finished: float = 0.0

    def observe(self, started: float, finished: float, items: int) -> None:
        """A batch of `items` was handled from `started` to `finished` (monotonic seconds). With batches
        in flight, a batch counts from when the one before it finished: the time they overlapped is
        the pool's once, or its service time would read up to twice what it is."""
        busy = finished - max(started, self._last_finished)
        self._last_finished = max(finished, self._last_finished)
        if items <= 0:
            return
        per_item = max(busy, 0.0) * 1000 / items
        if self.item_service_ms == 0.0:
            self.item_service_ms = per_item
        else:
            self.item_service_ms += self.smoothing * (per_item - self.item_service_ms)
        self._items += items
        self._batches += 1

    def report(self, pool: str, instance: str, buffered: int, paused: int) -> events.PoolReported:
        """The report for the interval since the last one (and start a new interval)."""
        now = time.monotonic()
        elapsed = max(now - self._since, 1e-9)
        reported = events.PoolReported(
            pool=pool,
            instance=instance,
            item_service_ms=self.item_service_ms,
            items_per_second=self._items / elapsed,
            mean_batch_size=self._items / self._batches if self._batches else 0.0,
            buffered=buffered,
            paused_partitions=paused,
            reported_at=events.now_timestamp(),
        )
        self._items, self._batches, self._since = 0, 0, now
        return reported


class PoolReporter:
    """Publishes this instance's report every interval (a supervised background loop)."""

    def __init__(
        self,
        pool: str,
        meter: PoolMeter,
        publisher: Publisher,
        interval_s: float,
        backlog: Callable[[], tuple[int, int]],
    ) -> None:
        self._pool = pool
        self._meter = meter
        self._publisher = publisher
        self._interval_s = interval_s
        # Records buffered, and partitions paused, in this instance.
        self._backlog = backlog
        self._instance = f"{socket.gethostname()}:{os.getpid()}"

    async def report_forever(self) -> None:
        """Report until cancelled; a report the broker does not take is skipped."""
        while True:
            await asyncio.sleep(self._interval_s)
            buffered, paused = self._backlog()
            report = self._meter.report(self._pool, self._instance, buffered, paused)
            try:
                await self._publisher.publish(report, key=self._pool)
            except TransientError as exc:
                log.warning("pool report not sent", error=str(exc))
