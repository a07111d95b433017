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
class Share:
    """A batch's share of the pool's time so far, in seconds."""

    seconds: float = 0.0


@dataclass
class PoolMeter:
    """This instance's per-item service time (exponentially weighted) and throughput.

    With batches in flight the pool's time is shared: each interval is divided equally among the
    batches running in it, so overlapping batches count it once between them, in whatever order they
    end (a batch's own start-to-end time would read up to twice the pool's)."""

    smoothing: float = 0.3
    item_service_ms: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _items: int = 0
    _batches: int = 0
    _since: float = 0.0
    _running: list[Share] = field(default_factory=list)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self._since = self._last = self.clock()

    def begin(self) -> Share:
        """A batch starts; hand its share back to end()."""
        self._advance()
        share = Share()
        self._running.append(share)
        return share

    def end(self, share: Share, items: int) -> float:
        """A batch of `items` ended (0: it failed, no sample); its share of the pool's time, in seconds."""
        self._advance()
        self._running.remove(share)
        if items > 0:
            per_item = share.seconds * 1000 / items
            if self.item_service_ms == 0.0:
                self.item_service_ms = per_item
            else:
                self.item_service_ms += self.smoothing * (per_item - self.item_service_ms)
            self._items += items
            self._batches += 1
        return share.seconds

    def _advance(self) -> None:
        now = self.clock()
        for share in self._running:
            share.seconds += (now - self._last) / len(self._running)
        self._last = now

    def report(self, pool: str, instance: str, buffered: int, paused: int) -> events.PoolReported:
        """The report for the interval since the last one (and start a new interval)."""
        now = self.clock()
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
