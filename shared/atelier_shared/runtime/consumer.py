"""The core loop of a subscription: join the group, fetch, hand batches to the layers, commit.

At-least-once: a record's offset is committed only after the layers returned for it, that is once
its outputs (or its dead-letter record) are acknowledged by all in-sync replicas; records finish
out of order and the committed offset advances over the done ones only. Fetched records wait in a
buffer served by priority, then round-robin by brand; when a priority's buffer is full its
partitions are paused (the consumer stays in its group) and resumed at half. A paused subscription
(flow control) fetches and takes nothing new, and holds nothing a rebalance would wait for.
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from atelier_shared import metrics, topics
from atelier_shared.logging import get_logger
from atelier_shared.runtime.delivery import Delivery
from atelier_shared.runtime.layers import Handle
from atelier_shared.runtime.retrying import Abandoned, Shutdown, interruptible, kafka_retriable, retrying, warn
from atelier_shared.runtime.scheduling import FairQueue, InFlight, OffsetTracker
from atelier_shared.runtime.subscription import Subscription
from atelier_shared.settings import AtelierSettings

log = get_logger(__name__)


class ConsumerLoop:
    """Runs one subscription's consumer until the service shuts down."""

    def __init__(
        self,
        settings: AtelierSettings,
        subscription: Subscription,
        handle: Handle,
        shutdown: Shutdown,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self._settings = settings
        self._subscription = subscription
        self._service = subscription.service
        self._group = settings.topics.group(subscription.name)
        self._specs = {settings.topics.name(spec): spec for spec in subscription.topics}
        self._handle = handle
        self._shutdown = shutdown
        self._on_failure = on_failure
        self._queue: FairQueue[Delivery] = FairQueue()
        self._offsets = OffsetTracker()
        self._in_flight: InFlight[list[Delivery]] = InFlight(subscription.options.in_flight, self._go_on)
        self._committing = asyncio.Lock()
        # Set when the service's shutdown or a rebalance begins: handlers' holds end (atelier_shared.hold).
        self._interrupt = asyncio.Event()
        shutdown.on_begin(lambda: self._interrupt.set())
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: AIOKafkaConsumer | None = None
        # A fetch or work loop that died: the service cannot go on and should be restarted.
        self.failure: BaseException | None = None

    @property
    def subscription(self) -> Subscription:
        return self._subscription

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The underlying consumer; raises before start()."""
        if self._consumer is None:
            raise RuntimeError(f"{self._service}: consumer of {self._group} used before start()")
        return self._consumer

    @property
    def ready(self) -> bool:
        """Joined the group and fetching."""
        return self._consumer is not None and not self._shutdown.begun and self.failure is None

    @property
    def buffered(self) -> int:
        """Records fetched and not yet handled."""
        return len(self._queue)

    @property
    def paused_partitions(self) -> int:
        """Partitions paused for backpressure or flow control."""
        return len(self._consumer.paused()) if self._consumer is not None else 0

    async def start(self) -> None:
        """Join the group (retrying while the brokers cannot be reached), then fetch and handle."""
        consumer = await _connected(self._settings, self._group, self._service, self._specs.values(), self._shutdown)
        consumer.subscribe(list(self._specs), listener=_Rebalance(self))
        self._consumer = consumer
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name=f"{self._group}-fetch"),
            asyncio.create_task(self._work_loop(), name=f"{self._group}-work"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: "asyncio.Task[None]") -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.failure = task.exception()
        log.error(
            "consumer loop died; stopping the service",
            task=task.get_name(),
            error=repr(self.failure),
            exc_info=self.failure,
            service=self._service,
        )
        self._on_failure(self.failure)  # type: ignore[arg-type]

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batches in flight (bounded), commit, and leave the group."""
        self._shutdown.begin()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._in_flight.finish(timeout_s)
        self._unbuffered(self._queue.drain())
        if self._consumer is not None:
            await self._commit()
            await _leave(self._consumer, self._service)
            self._consumer = None

    # Fetching

    async def _fetch_loop(self) -> None:
        options = self._subscription.options
        while not self._shutdown.begun:
            self._apply_flow_control()
            room = sum(
                max(options.buffer - self._queue.count(priority), 0)
                for priority in set(self._subscription.priorities.values())
            )
            try:
                records = await self.consumer.getmany(timeout_ms=200, max_records=max(room, 1))
            except KafkaError as exc:
                if not kafka_retriable(exc):
                    raise
                log.warning("fetch failed, retrying", error=repr(exc), service=self._service)
                await asyncio.sleep(0.5)
                continue
            assigned = self.consumer.assignment()
            for partition, batch in records.items():
                if partition not in assigned:
                    continue
                spec, epoch = self._specs[partition.topic], self._offsets.epoch(partition)
                for record in batch:
                    self._offsets.add(partition, record.offset)
                    self._queue.put(Delivery.of(record, spec, self._subscription.priorities[spec], epoch))
                    metrics.BUFFERED.labels(self._service, partition.topic).inc()

    def _apply_flow_control(self) -> None:
        """Pause what must not be fetched: everything while paused, else the priorities whose buffer is full."""
        consumer = self.consumer
        assigned, paused = consumer.assignment(), consumer.paused()
        capacity = self._subscription.options.buffer
        flowing = self._subscription.flowing.is_set()
        to_pause, to_resume = [], []
        for partition in assigned:
            buffered = self._queue.count(self._priority(partition))
            if not flowing or buffered >= capacity:
                to_pause.append(partition)
            elif buffered <= capacity // 2:
                to_resume.append(partition)
        if pausing := [p for p in to_pause if p not in paused]:
            consumer.pause(*pausing)
            log.info("pausing partitions", count=len(pausing), flowing=flowing, service=self._service)
        if resuming := [p for p in to_resume if p in paused]:
            consumer.resume(*resuming)
        metrics.PAUSED_PARTITIONS.labels(self._service).set(len(consumer.paused()))

    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        """Abandoned records back in the buffer, behind later ones (a rebalance of aiokafka's revokes every
        partition: they are discarded then, and fetched again in order)."""
        for old in deliveries:
            self._queue.put(Delivery.of(old.record, old.spec, old.priority, old.epoch))
            metrics.BUFFERED.labels(self._service, old.record.topic).inc()

    def _unbuffered(self, deliveries: Sequence[Delivery]) -> None:
        """Records that left the buffer (taken, dropped, or drained at shutdown)."""
        for delivery in deliveries:
            metrics.BUFFERED.labels(self._service, delivery.record.topic).dec()

    def _priority(self, partition: TopicPartition) -> int:
        return self._subscription.priorities[self._specs[partition.topic]]

    # Handling

    async def _next_batch(self) -> list[Delivery]:
        """The next batch, once the subscription flows and records wait."""
        flowing = self._subscription.flowing
        while True:
            await flowing.wait()
            await self._queue.wait_for_items()
            if flowing.is_set():  # Nothing awaited since: taking now cannot race a pause.
                options = self._subscription.options
                batch = await self._queue.take(options.batch, self._subscription.batch_key, self._subscription.cost)
                self._unbuffered(batch)
                return batch

    async def _work_loop(self) -> None:
        """Take a batch whenever there is room for one, and handle it in a task of its own."""
        while not self._shutdown.begun:
            if not await self._in_flight.start(self._next_batch, self._process, f"{self._group}-batch"):
                return

    def _go_on(self, task: "asyncio.Task[None]") -> bool:
        """Whether to take further batches after one ended: not after a failure (the service stops)."""
        self._on_task_done(task)
        return self.failure is None

    async def _process(self, taken: Sequence[Delivery]) -> None:
        # A batch taken while a rebalance drained waited for it: its revoked records are the new owner's.
        batch = [delivery for delivery in taken if delivery.epoch == self._offsets.epoch(delivery.topic_partition)]
        if len(batch) < len(taken):
            log.info("dropped records of revoked partitions", count=len(taken) - len(batch), service=self._service)
        if not batch:
            return
        now_ns = time.time_ns()
        for delivery in batch:
            delivery.handling_ns = now_ns
            metrics.HANDLING.labels(self._service, delivery.record.topic).inc()
        try:
            with interruptible(self._interrupt):
                outcomes = await self._handle(batch)
        except Abandoned:
            outcomes = [Abandoned()] * len(batch)
        finally:
            for delivery in batch:
                metrics.HANDLING.labels(self._service, delivery.record.topic).dec()
        abandoned = {item for item, outcome in zip(batch, outcomes, strict=True) if isinstance(outcome, Abandoned)}
        # Abandoned records stay uncommitted: redelivered after a stop; after a rebalance's interrupt,
        # taken again here (those of revoked partitions are discarded with the rest of the buffer).
        if abandoned and not self._shutdown.begun:
            self._requeue([delivery for delivery in batch if delivery in abandoned])
        for delivery in batch:
            if delivery not in abandoned:
                self._offsets.done(delivery.topic_partition, delivery.record.offset)
        await self._commit()

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        if self._consumer is None:
            return
        # One commit at a time, its offsets read inside: batches in flight end in any order, and an
        # older commit retried by the client must not land after a newer one.
        async with self._committing:
            owned = self._consumer.assignment() if partitions is None else partitions
            offsets = {p: o for p, o in self._offsets.committable().items() if p in owned}
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
                self._offsets.committed(offsets)
            except KafkaError as exc:
                # The group moved on; the new owner will redeliver these records (at-least-once).
                log.warning("commit failed", error=repr(exc), service=self._service)

    # Rebalances

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """End the holds, finish the batches in flight, commit what is done, drop buffered records of
        revoked partitions."""
        self._interrupt.set()
        try:
            async with self._in_flight.drained():
                await self._commit(revoked)
                self._unbuffered(self._queue.discard(revoked))
                self._offsets.forget(revoked)
        finally:
            if not self._shutdown.begun:
                self._interrupt = asyncio.Event()
        if revoked:
            log.info("partitions revoked", count=len(revoked), service=self._service)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Log the new assignment; positions come from the committed offsets."""
        log.info("partitions assigned", count=len(assigned), service=self._service)


async def _connected(
    settings: AtelierSettings, group: str, service: str, specs: Iterable[topics.TopicSpec[Any]], shutdown: Shutdown
) -> AIOKafkaConsumer:
    """A started consumer of `group` (committing by hand), retrying while the brokers cannot be reached."""
    on_retry = warn("joining the group", group=group, service=service)
    consumer: AIOKafkaConsumer | None = None
    async for attempt in retrying(kafka_retriable, shutdown.sleep, 0.5, 5.0, on_retry):
        with attempt:
            consumer = AIOKafkaConsumer(
                **settings.kafka_options(),
                group_id=group,
                client_id=f"{service}-{group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=settings.kafka_session_timeout_ms,
                heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=fetch_wait_ms(settings, list(specs)),
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
    assert consumer is not None
    return consumer


async def _leave(consumer: AIOKafkaConsumer, service: str) -> None:
    try:
        await consumer.stop()
    except KafkaError as exc:
        # Leaving the group failed (a broker is down): the group will expire this member.
        log.warning("leaving the group failed", error=repr(exc), service=service)
    except asyncio.CancelledError:
        # After a broker outage aiokafka's fetcher can let the cancellation of its own fetch
        # task escape from stop(); re-raise only if this task is the one being cancelled.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("consumer stop interrupted by its fetcher; left without it", service=service)


def fetch_wait_ms(settings: AtelierSettings, specs: Sequence[topics.TopicSpec[Any]]) -> int:
    """The preview path's fetch wait for a consumer of any of its topics, else the general one."""
    on_path = any(spec in topics.PREVIEW_PATH for spec in specs)
    return settings.kafka_preview_fetch_wait_ms if on_path else settings.kafka_fetch_wait_ms


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._loop.on_assigned(set(assigned))
