"""Stylizer pools' consumer lag, read from Kafka and turned into an expected wait.

On a short period the monitor reads, per pool, the group's committed offsets (OffsetFetch) and the
topics' end offsets (ListOffsets); their difference is the lag. A Burrow-like window of samples
gives the lag's trend and, while the pool stays backlogged, its drain rate (committed-offset
progress per second). A new request's expected wait is the lag ahead of it divided by the drain
rate; before the drain rate is measurable (the group just started, or it was idle) it is the lag
times the per-item service time the pool's instances report on the pool-stats topic.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorNotAvailableError, KafkaError, NoError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Gauge

from atelier_shared import AtelierSettings, InvalidEvent, events, get_logger, kafka_retriable, topics

log = get_logger(__name__)

# An expected wait for a pool that is backlogged and makes no progress (stalled or paused).
STALLED_WAIT_MS = 3_600_000.0
# Pool reports older than this are ignored (the instance is gone).
_REPORT_TTL_S = 30.0
# How often the pools' partitions are read again: partitions added to scale a pool out count toward
# its lag from then on, not from the router's next restart.
PARTITIONS_REFRESH_S = 60.0

POOL_LAG = Gauge("atelier_pool_lag", "Requests ahead of a new request in a stylizer pool.", ["pool"])
POOL_BACKLOG = Gauge("atelier_pool_backlog", "Uncommitted requests on all of a pool's topics.", ["pool"])
POOL_DRAIN = Gauge(
    "atelier_pool_drain_rate", "Requests per second a backlogged pool completes (NaN: unmeasured).", ["pool"]
)
POOL_TREND = Gauge("atelier_pool_lag_trend", "Change of the pool's lag per second.", ["pool"])
POOL_SERVICE = Gauge("atelier_pool_service_seconds", "Per-item service time reported by the pool.", ["pool"])
EXPECTED_WAIT = Gauge("atelier_expected_wait_seconds", "Expected queue wait of a new request.", ["pool"])


@dataclass(frozen=True)
class PoolSpec:
    """A stylizer pool as Kafka sees it: its group, the topics ahead of a request, all its topics."""

    pool: str
    group: str
    # Topics whose backlog a new production request waits behind (its own and higher priority).
    ahead: tuple[str, ...]
    # Every topic the pool consumes (lower priorities included).
    all_topics: tuple[str, ...]


def pool_specs(names: topics.Topics) -> list[PoolSpec]:
    """The quality and fast pools of a deployment."""
    return [
        PoolSpec(
            "quality",
            names.group("stylizer-quality"),
            (names.name(topics.STYLIZE_QUALITY),),
            (names.name(topics.STYLIZE_QUALITY), names.name(topics.STYLIZE_RERENDER)),
        ),
        PoolSpec(
            "fast",
            names.group("stylizer-fast"),
            (names.name(topics.STYLIZE_PREVIEW), names.name(topics.STYLIZE_FAST)),
            (names.name(topics.STYLIZE_PREVIEW), names.name(topics.STYLIZE_FAST)),
        ),
    ]


@dataclass(frozen=True)
class Sample:
    """One reading of a pool."""

    at: float
    lag: int
    backlog: int
    committed: int


@dataclass(frozen=True)
class PoolEstimate:
    """What the router knows of a pool now."""

    pool: str
    lag: int
    backlog: int
    drain_rate: float | None
    trend: float
    # Per-item service time: the pool's reports, or the default before any arrives.
    per_item_ms: float
    instances: int
    expected_wait_ms: float
    basis: str

    def describe(self) -> str:
        """The estimate and its inputs, in words."""
        if self.basis == "drain rate":
            how = f"lag {self.lag} / drain {self.drain_rate:.2f}/s"
        elif self.basis == "stalled":
            how = f"lag {self.lag}, no progress"
        elif self.basis == "service time":
            how = f"lag {self.lag} x {self.per_item_ms:.0f} ms / {max(self.instances, 1)} instance(s)"
        else:
            how = "no backlog"
        return f"{self.pool} pool expected wait {self.expected_wait_ms / 1000:.1f} s ({how})"


class PoolWindow:
    """Recent samples of one pool, like Burrow's window."""

    def __init__(self, window_s: float, min_span_s: float) -> None:
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        """Record a sample; forget those older than the window."""
        self._samples.append(sample)
        while self._samples and sample.at - self._samples[0].at > self._window_s:
            self._samples.popleft()

    @property
    def latest(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def drain_rate(self) -> float | None:
        """Committed requests per second while backlogged the whole window; None when unmeasurable."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        span = last.at - first.at
        if span < self._min_span_s or any(sample.backlog == 0 for sample in self._samples):
            return None
        return max(last.committed - first.committed, 0) / span

    def trend(self) -> float:
        """Lag change per second over the window."""
        if len(self._samples) < 2:
            return 0.0
        first, last = self._samples[0], self._samples[-1]
        span = last.at - first.at
        return (last.lag - first.lag) / span if span > 0 else 0.0


def estimate(
    pool: str,
    window: PoolWindow,
    service_ms: float | None,
    instances: int,
    default_service_ms: float,
    routed_since_sample: int = 0,
    behind_since_sample: int = 0,
) -> PoolEstimate:
    """Turn a pool's window (and reports) into an expected wait for a new request. Requests routed
    since the sample count toward both; those on topics served after new work (re-renders) toward
    the backlog only."""
    latest = window.latest
    lag = (latest.lag if latest else 0) + routed_since_sample
    backlog = (latest.backlog if latest else 0) + routed_since_sample + behind_since_sample
    drain = window.drain_rate()
    per_item = service_ms if service_ms else default_service_ms
    if lag == 0:
        wait, basis = 0.0, "idle"
    elif drain is not None and drain > 0:
        wait, basis = lag / drain * 1000, "drain rate"
    elif drain is not None:
        wait, basis = STALLED_WAIT_MS, "stalled"
    else:
        wait, basis = lag * per_item / max(instances, 1), "service time"
    return PoolEstimate(
        pool, lag, backlog, drain, window.trend(), per_item, instances, min(wait, STALLED_WAIT_MS), basis
    )


class LagMonitor:
    """Reads the pools' lag and reports from Kafka on a period; answers estimates at any time.

    Its polling loop runs as a supervised background loop of the router: an error that is not a
    passing broker problem ends it and crashes the router (to be restarted). Between samples the
    estimates keep their last values; once no sample succeeded for `stale_after_s` the reading is
    stale, the router reports unready and fails safe (see FailoverPolicy).
    """

    def __init__(
        self,
        settings: AtelierSettings,
        pools: list[PoolSpec],
        interval_s: float,
        window_s: float,
        min_span_s: float,
        default_service_ms: float,
        stale_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._pools = {spec.pool: spec for spec in pools}
        self._interval_s = interval_s
        self._default_service_ms = default_service_ms
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._windows = {spec.pool: PoolWindow(window_s, min_span_s) for spec in pools}
        self._routed: dict[str, int] = {spec.pool: 0 for spec in pools}
        self._behind: dict[str, int] = {spec.pool: 0 for spec in pools}
        self._reports: dict[str, dict[str, tuple[float, events.PoolReported]]] = {spec.pool: {} for spec in pools}
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}
        self._partitions_read_at = 0.0
        self._stats: AIOKafkaConsumer | None = None
        self._sampled_at: float | None = None
        self.samples_taken = 0
        # Called after every sample, and after every failed one (the router re-assesses fail-over and the
        # re-render gate on it: a stale reading pauses re-renders).
        self.on_sample: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Connect (an admin client for the groups' offsets, a reader of end offsets, one of pool
        reports) and take a first sample."""
        self._admin = AIOKafkaAdminClient(**self._settings.kafka_options(), client_id="router-lag")
        await self._admin.start()
        await self._read_partitions()
        self._offsets = AIOKafkaConsumer(
            **self._settings.kafka_options(), enable_auto_commit=False, client_id="router-lag"
        )
        await self._offsets.start()
        self._stats = AIOKafkaConsumer(
            self._settings.topics.name(topics.POOL_STATS),
            **self._settings.kafka_options(),
            enable_auto_commit=False,
            auto_offset_reset="latest",
            client_id="router-pool-stats",
            fetch_max_wait_ms=self._settings.kafka_fetch_wait_ms,
        )
        await self._stats.start()
        await self.sample()

    async def _read_partitions(self) -> None:
        self._partitions = {spec.pool: await self._partitions_of(spec.all_topics) for spec in self._pools.values()}
        self._partitions_read_at = self._clock()

    async def _refresh_partitions(self) -> None:
        """Read the partitions again once PARTITIONS_REFRESH_S has passed (a failure keeps the last list)."""
        if self._clock() - self._partitions_read_at < PARTITIONS_REFRESH_S:
            return
        try:
            await self._read_partitions()
        except (RuntimeError, KafkaError) as exc:  # A topic gone, or not described this time.
            log.warning("pool partitions not read again: the last list stays", error=str(exc))
            self._partitions_read_at = self._clock()

    async def _partitions_of(self, names: Iterable[str]) -> list[TopicPartition]:
        """Every partition of the topics; an error for a topic that is not there. Read as a pool without
        partitions, its lag would be 0 for good and the router would never fail over; and describing
        it would create it where the brokers auto-create topics (listing them never does)."""
        assert self._admin is not None
        missing = sorted(set(names) - set(await self._admin.list_topics()))
        described = [] if missing else await self._admin.describe_topics(list(names))
        # A broker that has not caught up with a topic just created answers it with an error, no partitions.
        missing += [item["topic"] for item in described if item["error_code"] or not item["partitions"]]
        if missing:
            raise RuntimeError(
                f"topics {', '.join(missing)} do not exist (or this principal may not describe them): "
                "provision them before the router starts (python -m atelier_shared.provision)"
            )
        return [TopicPartition(item["topic"], part["partition"]) for item in described for part in item["partitions"]]

    async def stop(self) -> None:
        """Disconnect."""
        for consumer in (self._offsets, self._stats):
            if consumer is not None:
                await consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def poll(self) -> None:
        """Sample every interval, for as long as the router runs; a passing broker problem keeps the last estimate."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                # Bounded: with every broker down a read waits for metadata indefinitely, not failing.
                async with asyncio.timeout(self._stale_after_s):
                    await self.sample()
            except (KafkaError, TimeoutError) as exc:
                if isinstance(exc, KafkaError) and not kafka_retriable(exc):
                    raise
                log.warning("lag read failed; keeping the last estimate", error=repr(exc), stale=not self.fresh)
                self.on_sample()  # Once the reading is stale, what waits on a fresh one must know.

    @property
    def fresh(self) -> bool:
        """Whether a sample succeeded within the last `stale_after_s`."""
        return self._sampled_at is not None and self._clock() - self._sampled_at <= self._stale_after_s

    async def sample(self) -> None:
        """Read any new pool reports and every pool's offsets once: one end-offsets request for all
        partitions, one committed-offsets request per pool group (not one per partition)."""
        assert self._admin is not None and self._offsets is not None
        await self._refresh_partitions()
        await self._read_reports()
        # What was routed before the end offsets are read is in this sample; what is routed while it is
        # read is not, and still counts until the next one.
        routed_before, behind_before = dict(self._routed), dict(self._behind)
        ends = await self._offsets.end_offsets([tp for partitions in self._partitions.values() for tp in partitions])
        for pool, spec in self._pools.items():
            partitions = self._partitions[pool]
            offsets = await self._group_offsets(spec.group, partitions)
            lag = backlog = committed_total = 0
            for partition in partitions:
                stored = offsets.get(partition)
                committed = stored.offset if stored is not None and stored.offset >= 0 else 0
                behind = max(ends[partition] - committed, 0)
                backlog += behind
                committed_total += committed
                if partition.topic in spec.ahead:
                    lag += behind
            self._windows[pool].add(Sample(self._clock(), lag, backlog, committed_total))
            self._routed[pool] -= routed_before[pool]
            self._behind[pool] -= behind_before[pool]
            self._export(self.estimate(pool))
        self._sampled_at = self._clock()
        self.samples_taken += 1
        self.on_sample()

    async def _group_offsets(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """A group's committed offsets in one request; a retriable error unless every partition is in it.

        aiokafka's admin client drops OffsetFetch's top-level error (a coordinator loading or moving,
        as in a rolling restart): it answers with no partitions, which read as offset 0 would make the
        whole log look like backlog and fail over for nothing, or it raises NoError (not retriable),
        which would end the monitor."""
        assert self._admin is not None
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata] = await self._admin.list_consumer_group_offsets(
                group, partitions=partitions
            )
        except NoError as exc:
            raise CoordinatorNotAvailableError(f"offsets of group {group}: the coordinator answered an error") from exc
        missing = [partition for partition in partitions if partition not in offsets]
        if missing:
            raise CoordinatorNotAvailableError(f"offsets of group {group} lack {len(missing)} partitions")
        return offsets

    async def _read_reports(self) -> None:
        assert self._stats is not None
        for batch in (await self._stats.getmany(timeout_ms=0)).values():
            for record in batch:
                try:
                    report = topics.POOL_STATS.decode(record.value)
                except InvalidEvent as exc:
                    log.warning("ignoring an unreadable pool report", offset=record.offset, error=str(exc))
                    continue
                if report.pool in self._reports:
                    self._reports[report.pool][report.instance] = (self._clock(), report)
        now = self._clock()
        for reports in self._reports.values():  # Instances gone (scaled in, restarted) are forgotten.
            for instance in [name for name, (at, _) in reports.items() if now - at >= _REPORT_TTL_S]:
                del reports[instance]

    @staticmethod
    def _export(current: PoolEstimate) -> None:
        POOL_LAG.labels(current.pool).set(current.lag)
        POOL_BACKLOG.labels(current.pool).set(current.backlog)
        POOL_DRAIN.labels(current.pool).set(current.drain_rate if current.drain_rate is not None else math.nan)
        POOL_TREND.labels(current.pool).set(current.trend)
        POOL_SERVICE.labels(current.pool).set(current.per_item_ms / 1000)
        EXPECTED_WAIT.labels(current.pool).set(current.expected_wait_ms / 1000)

    def note_routed(self, pool: str) -> None:
        """The router just sent a request to a pool: count it until the next sample sees it."""
        self._routed[pool] += 1

    def note_rerender(self, pool: str) -> None:
        """The router just sent a re-render to a pool, which serves them after new work: it adds to the
        pool's backlog until the next sample, not to the wait of a new request."""
        self._behind[pool] += 1

    def estimate(self, pool: str) -> PoolEstimate:
        """The pool's current estimate."""
        now = self._clock()
        live = [report for at, report in self._reports[pool].values() if now - at < _REPORT_TTL_S]
        service = [report.item_service_ms for report in live if report.item_service_ms > 0]
        return estimate(
            pool,
            self._windows[pool],
            sum(service) / len(service) if service else None,
            len(live),
            self._default_service_ms,
            self._routed[pool],
            self._behind[pool],
        )
