"""The asset status view: a faust table keyed by asset id, folded from every pipeline topic.

Every topic is keyed by asset id and has the same partition count, so the table is co-partitioned
with its sources and needs no repartitioning. The table is backed by a compacted changelog topic,
recovered at start; until then the view is not ready.
"""

import asyncio
import logging
import tempfile
import time
from typing import Any

import faust
from faust.auth import OAuthCredentials
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

from atelier_shared import AtelierSettings, InvalidEvent, TopicSpec, get_logger, topics
from atelier_shared.status import FINAL_STAGES, STATUS_TOPICS, ForeignAsset, merge_status
from atelier_shared.tracing import trace_id_of
from atelier_status.feed import Feed

log = get_logger(__name__)
# How long stopping the faust app may take (it leaves its group and commits, when its brokers answer).
STOP_TIMEOUT_S = 10.0
# Recent assets kept per brand for readers (the studio's list).
RECENT_KEPT = 200
# Documents looked at between yields to the event loop while pruning.
PRUNE_CHUNK = 1000
# The view's bookkeeping in each document (left out of what clients see, like the fold's `versions`):
# the partition of the document's changelog records, and when the view last changed it (epoch ms).
RETENTION = "retention"


def _headers(headers: Any) -> list[tuple[str, bytes]]:
    """faust's record headers (a mapping or pairs) as Kafka header pairs."""
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    return [(str(name), value if isinstance(value, bytes) else str(value).encode()) for name, value in items]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer with the fetch wait from settings: faust fixes it at 1.5 s, which on the
    embedded cluster (it holds a fetch for the whole wait) kept an export from the view for ~1 s."""

    fetch_wait_ms = 500

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_wait_ms  # Read when the consumer starts its fetcher.
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """faust's Kafka transport (aiokafka) with _Consumer; the view's broker URL names it."""

    Consumer = _Consumer


drivers.TRANSPORTS.aliases["atelier-kafka"] = f"{__name__}:Transport"


def credentials(settings: AtelierSettings) -> Any:
    """faust's form of the Kafka security settings (None: plaintext)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = settings.kafka_ssl_context() if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if settings.kafka_sasl_mechanism == "OAUTHBEARER":
        return OAuthCredentials(oauth_cb=settings.kafka_oauth_tokens, ssl_context=context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


class StatusView:
    """Runs the faust app that keeps the table current."""

    def __init__(self, settings: AtelierSettings) -> None:
        for noisy in ("faust", "mode", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._topics = settings.topics
        # The table lives in memory (its changelog topic is the durable copy), yet faust still creates
        # a data folder: keep it out of the working directory and remove it on stop.
        self._datadir = tempfile.TemporaryDirectory(prefix="atelier-status-")
        self.app = faust.App(
            self._topics.status_app_id,
            broker=f"atelier-kafka://{settings.kafka_bootstrap}",
            store="memory://",
            datadir=self._datadir.name,
            web_enabled=False,
            topic_allow_declare=False,
            topic_disable_leader=True,
            topic_partitions=settings.topic_partitions,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
            broker_credentials=credentials(settings),
        )
        _ConsumerThread.fetch_wait_ms = settings.kafka_preview_fetch_wait_ms
        self.table = self.app.Table("asset-status", default=None, partitions=settings.topic_partitions)
        source = self.app.topic(
            *(self._topics.name(spec) for spec in STATUS_TOPICS),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.app.agent(source, name="asset-status-updater")(self._update)
        # Recovery writes the table without the agent: the indexes are rebuilt after each assignment.
        self.app.on_partitions_assigned.connect(self._forget_indexes)
        self._started = False
        # Each brand's changes, for live listeners.
        self.feed = Feed()
        # Indexed from the table once recovered: each brand's assets not final yet (its in-flight
        # quota), and when each of its recent assets was uploaded (ms).
        self._open: dict[str, set[str]] | None = None
        self._recent: dict[str, dict[str, float]] = {}

    @property
    def sources(self) -> tuple[TopicSpec[Any], ...]:
        """The topics the view folds."""
        return STATUS_TOPICS

    async def _update(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            topic = event.message.topic
            spec = self._topics.spec(topic)
            try:
                decoded = spec.decode(event.value)
            except InvalidEvent:
                continue  # The consuming service dead-letters it; the dead-letter record updates the view.
            key = (event.key or b"").decode(errors="replace")
            if not key:
                continue
            held = self.table.get(key)
            try:
                status = merge_status(held, spec, decoded)
            except ForeignAsset as exc:
                log.warning("event refused: its asset id belongs to another brand", asset_id=key, reason=str(exc))
                continue
            trace_id = trace_id_of(_headers(event.headers))
            if spec is topics.UPLOADED and trace_id:
                status["trace_id"] = trace_id
            if status == held:
                continue  # A redelivery, or an event that changes nothing: no write, no news.
            status[RETENTION] = {"partition": event.message.partition, "changed_ms": time.time() * 1000}
            self.table[key] = status
            self._index(key, status)
            self.feed.publish(str(status.get("brand", "")), status)

    def _forget_indexes(self, *_args: Any, **_kwargs: Any) -> None:
        self._open = None

    async def prune(self, before_ms: float) -> int:
        """Forget the documents last changed before `before_ms` (epoch ms) in the partitions this worker
        owns, each with a tombstone in the changelog so that no recovery brings it back, and those of
        partitions it no longer holds; how many.

        faust deletes a key only inside its agent, in the partition of the event being handled; the
        view records each document's partition, so it deletes with that partition instead. It stops
        while a rebalance or a recovery is under way (the partitions it owns are changing).
        """
        pruned = 0
        keys = list(self.table.keys())
        for start in range(0, len(keys), PRUNE_CHUNK):
            if not self.ready or self.app.rebalancing or self.app.in_recovery:
                break
            owned = {tp.partition for tp in self.app.assignor.assigned_actives()}
            held = owned | {tp.partition for tp in self.app.assignor.assigned_standbys()}
            for asset_id in keys[start : start + PRUNE_CHUNK]:
                status = self.table.data.get(asset_id) or {}
                kept = status.get(RETENTION)  # None in a document written before retention existed.
                if kept is None:
                    continue
                if kept["partition"] in owned and kept["changed_ms"] < before_ms:
                    self.table.send_changelog(kept["partition"], asset_id, None, value_serializer="raw")
                elif kept["partition"] in held:
                    continue  # Recent, or a standby copy: its owner deletes it.
                # Past retention (its tombstone sent), or of a partition moved to another worker (whose
                # documents faust forgets only when it recovered them): forgotten here.
                del self.table.data[asset_id]
                self._unindex(asset_id, str(status.get("brand", "")))
                pruned += 1
            # The chunk's tombstones are produced before the next (50,000 queued at once held the loop
            # 0.6 s while faust produced them: bench/results/status-cpu-2core.md); events are folded
            # meanwhile, and each document is read again above.
            await self.app.producer.flush()
            await asyncio.sleep(0)
        return pruned

    async def keep_pruning(self, retention_s: float, interval_s: float) -> None:
        """Prune documents unchanged for `retention_s`, every `interval_s`."""
        while True:
            await asyncio.sleep(interval_s)
            pruned = await self.prune(time.time() * 1000 - retention_s * 1000)
            if pruned:
                log.info("forgot asset statuses past their retention", count=pruned, retention_s=retention_s)

    def _index(self, asset_id: str, status: dict[str, Any]) -> None:
        if self._open is None:
            return
        brand = str(status.get("brand", ""))
        brand_open = self._open.setdefault(brand, set())
        if status.get("stage") in FINAL_STAGES:
            brand_open.discard(asset_id)
        else:
            brand_open.add(asset_id)
        recent = self._recent.setdefault(brand, {})
        recent[asset_id] = float(status.get("versions", {}).get("timeline.uploaded_at", 0.0))
        if len(recent) > 2 * RECENT_KEPT:  # Trimmed now and then, not on every change.
            self._recent[brand] = dict(sorted(recent.items(), key=lambda item: item[1])[-RECENT_KEPT:])

    def _unindex(self, asset_id: str, brand: str) -> None:
        if self._open is not None:
            self._open.get(brand, set()).discard(asset_id)
        self._recent.get(brand, {}).pop(asset_id, None)

    def open_assets(self, brand: str) -> set[str] | None:
        """A brand's assets that are not final yet (exported or failed); None while the table recovers."""
        index = self._open_index()
        return None if index is None else index.get(brand, set())

    def recent(self, brand: str, limit: int) -> list[dict[str, Any]] | None:
        """A brand's most recently uploaded assets (up to RECENT_KEPT), newest first; None while the table recovers."""
        if self._open_index() is None:
            return None
        uploaded = self._recent.get(brand, {})
        newest = sorted(uploaded, key=uploaded.__getitem__, reverse=True)[: min(limit, RECENT_KEPT)]
        statuses = (self.get(asset_id) for asset_id in newest)
        # An id is the brand's only while its document says so (an intake event may name any id).
        return [status for status in statuses if status is not None and status.get("brand") == brand]

    def _open_index(self) -> dict[str, set[str]] | None:
        """The indexes (the open one returned), built from the table when missing; None, and forgotten,
        while the table recovers: recovery writes the table without the agent, so they are rebuilt after."""
        if not self.ready:
            self._open = None
            return None
        if self._open is None:
            self._open, self._recent = {}, {}
            for asset_id, status in self.table.items():
                self._index(asset_id, status)
        return self._open

    async def start(self) -> None:
        """Start the faust app in the running loop."""
        await self.app.start()
        self._started = True

    async def stop(self) -> None:
        """Stop the faust app, within STOP_TIMEOUT_S: with its brokers gone, faust's own stop waited a
        minute on them, past Kubernetes' grace period (its consumer thread ends when cancelled)."""
        if self._started:
            self._started = False
            began = time.monotonic()
            # On timeout, faust takes the cancellation and returns: wait_for then raises nothing.
            await asyncio.wait_for(self.app.stop(), STOP_TIMEOUT_S)
            if time.monotonic() - began >= STOP_TIMEOUT_S:
                log.warning("the status view did not stop in time; left it", timeout_s=STOP_TIMEOUT_S)
        self._datadir.cleanup()

    @property
    def ready(self) -> bool:
        """Started and done recovering the table."""
        # faust's TableManager has `recovery`; its protocol type does not declare it.
        return self._started and bool(self.app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]

    def get(self, asset_id: str) -> dict[str, Any] | None:
        """An asset's status, or None when the view does not have it."""
        status = self.table.get(asset_id)
        return dict(status) if status is not None else None
