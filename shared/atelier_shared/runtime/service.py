"""A service, declared in one place: what it consumes and publishes, its parts, and how it runs.

    service = Service("tagger", settings)
    service.consume(topics.UPLOADED, tagger.tag, publishes=topics.TAGGED, concurrency=2)
    return service

Each subscription runs in the shared consumer loop wrapped in the shared layers (tracing, logging,
metrics, dead-lettering, retries, publishing). Components (a lag monitor, an HTTP client session)
start after the producer and stop before it; background loops are supervised: one that dies
crashes the service (crash-only: it exits non-zero and is restarted). The declarations also give
the topic graph the README documents.
"""

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from atelier_shared import metrics, topics
from atelier_shared.logging import configure_logging, get_logger
from atelier_shared.runtime.consumer import ConsumerLoop
from atelier_shared.runtime.delivery import Outgoing
from atelier_shared.runtime.http import HttpServer, ReadinessCheck
from atelier_shared.runtime.layers import default_layers, stack
from atelier_shared.runtime.producer import EventProducer
from atelier_shared.runtime.retrying import Shutdown
from atelier_shared.runtime.scheduling import BatchPolicy
from atelier_shared.runtime.subscription import (
    BatchHandler,
    Options,
    Publishes,
    RecordHandler,
    Subscription,
    published_topics,
)
from atelier_shared.settings import AtelierSettings, load_settings
from atelier_shared.topics import TopicSpec
from atelier_shared.tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)

E = TypeVar("E")
S = TypeVar("S", bound=AtelierSettings)


class Component(Protocol):
    """A part with a lifecycle: started once after the producer, stopped once before it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Edge:
    """One line of the topic graph: a service (and how) consuming, reading or publishing a topic."""

    topic: TopicSpec[Any]
    role: str  # "consumes", "reads" or "publishes"
    by: str


class Publisher:
    """Publishes events to one declared topic from outside a handler (an HTTP route, a report)."""

    def __init__(self, producer: EventProducer, topic: TopicSpec[Any]) -> None:
        self._producer = producer
        self.topic = topic

    async def publish(self, event: Message, key: str = "") -> None:
        """Produce one event (keyed by its asset id unless `key` is given) in the current trace."""
        await self._producer.send([Outgoing(self.topic, event, key)])


class Service:
    """A service's declarations, and its lifecycle."""

    def __init__(
        self,
        name: str,
        settings: AtelierSettings,
        *,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        # Resource attributes of the service's traces (e.g. the stylizer's pool).
        self.attributes = attributes or {}
        self.shutdown = Shutdown()
        self.crashed = asyncio.Event()
        self.producer = EventProducer(settings.kafka_options(), name, settings.topics, settings.kafka_linger_ms)
        self.http = HttpServer(settings.ops_host, settings.ops_port)
        self.http.check("kafka", self._kafka_ready)
        self.subscriptions: dict[str, Subscription] = {}
        self.edges: list[Edge] = []
        self._components: list[Component] = []
        self._started: list[Component] = []  # Those whose start() returned: the ones to stop.
        self._background: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        self._loops: list[ConsumerLoop] = []
        self._tasks: list[asyncio.Task[None]] = []

    # Declarations

    def consume(
        self,
        topics: TopicSpec[E] | Sequence[TopicSpec[E]],
        handler: RecordHandler[E],
        *,
        publishes: Publishes | None,
        group: str | None = None,
        concurrency: int = 1,
        options: Options | None = None,
    ) -> Subscription:
        """Handle each record of `topics` (in priority order) with `handler`, `concurrency` at a time.

        Calls with the same group share one consumer (one handler per topic).
        """
        default = Options(batch=BatchPolicy(max_items=2 * concurrency))
        subscription = self._subscription(group, publishes, replace(options or default, concurrency=concurrency))
        ordered = isinstance(topics, Sequence)
        for priority, topic in enumerate(self._topic_list(topics)):
            subscription.priorities[topic] = priority if ordered else 0
            subscription.record_handlers[topic] = handler
        return subscription

    def consume_batches(
        self,
        topics: Sequence[TopicSpec[Any]],
        handler: BatchHandler,
        *,
        publishes: Publishes,
        options: Options,
        group: str | None = None,
    ) -> Subscription:
        """Handle micro-batches of `topics` (highest priority first) with `handler`."""
        subscription = self._subscription(group, publishes, options)
        subscription.batch_handler = handler
        for priority, topic in enumerate(topics):
            subscription.priorities[topic] = priority
        return subscription

    def publisher(self, topic: TopicSpec[Any], *, by: str) -> Publisher:
        """A publisher of `topic` for code outside handlers; `by` says which (for the topic graph)."""
        self.edges.append(Edge(topic, "publishes", f"{self.name} ({by})"))
        return Publisher(self.producer, topic)

    def reads(self, *topics: TopicSpec[Any], by: str) -> None:
        """Declare topics read outside a consumer group (a lag monitor, a table)."""
        self.edges.extend(Edge(topic, "reads", f"{self.name} ({by})") for topic in topics)

    def add(self, component: Component) -> None:
        """A component started after the producer and stopped before it, in reverse order."""
        self._components.append(component)

    def background(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A loop run while the service runs; if it ends with an error the service crashes."""
        self._background.append((name, loop))

    def check(self, name: str, check: ReadinessCheck) -> None:
        """A readiness check of /readyz."""
        self.http.check(name, check)

    def _topic_list(self, topics: TopicSpec[Any] | Sequence[TopicSpec[Any]]) -> list[TopicSpec[Any]]:
        return [topics] if isinstance(topics, TopicSpec) else list(topics)

    def _subscription(self, group: str | None, publishes: Publishes | None, options: Options) -> Subscription:
        name = group or self.name
        if name not in self.subscriptions:
            self.subscriptions[name] = Subscription(self.name, name, publishes, options)
        subscription = self.subscriptions[name]
        if subscription.publishes != publishes:
            raise ValueError(f"{self.name}: every handler of group {name!r} must publish the same topics")
        return subscription

    def topology(self) -> list[Edge]:
        """Every topic this service consumes, reads or publishes, and by what."""
        edges = list(self.edges)
        for subscription in self.subscriptions.values():
            who = f"{self.name} ({subscription.name})" if subscription.name != self.name else self.name
            edges += [Edge(topic, "consumes", who) for topic in subscription.topics]
            sources = f"{self.name} (from {', '.join(topic.suffix for topic in subscription.topics)})"
            edges += [Edge(topic, "publishes", sources) for topic in published_topics(subscription.publishes)]
        if self.subscriptions:  # The runtime's dead-letter layer, for what fails for good.
            edges.append(Edge(topics.DEAD_LETTER, "publishes", self.name))
        return edges

    # Lifecycle

    def fail(self, error: BaseException) -> None:
        """Something the service cannot go on without has failed: stop (and exit non-zero)."""
        log.error("service failed", error=repr(error), service=self.name)
        self.crashed.set()

    async def _kafka_ready(self) -> bool:
        return self.producer.started and all(loop.ready for loop in self._loops) and not self.crashed.is_set()

    async def start(self) -> None:
        """HTTP (alive, not ready), producer, components, consumers, background loops; then ready."""
        metrics.STARTED.labels(self.name).set(0)  # Scraped from now: a start that never ends is seen.
        await self.http.start()
        await self.producer.start()
        for component in self._components:
            await component.start()
            self._started.append(component)
        for subscription in self.subscriptions.values():
            group = self.settings.topics.group(subscription.name)
            layers = default_layers(subscription.name, group, self.producer, self.shutdown, subscription.options)
            for spec in subscription.topics:  # At zero from the start, so the first dead letter is a rise.
                metrics.MESSAGES.labels(subscription.name, self.settings.topics.name(spec), "dead_lettered")
            handle = stack(layers, subscription.handle)
            loop = ConsumerLoop(self.settings, subscription, handle, self.shutdown, self.fail)
            self._loops.append(loop)
            await loop.start()
        for name, run in self._background:
            task = asyncio.create_task(run(), name=name)
            task.add_done_callback(self._on_background_done)
            self._tasks.append(task)
        self.http.open()
        metrics.STARTED.labels(self.name).set(1)
        log.info("started", service=self.name, port=self.http.port)

    def _on_background_done(self, task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background loop died", task=task.get_name(), exc_info=task.exception(), service=self.name)
            self.fail(task.exception())  # type: ignore[arg-type]

    async def stop(self, timeout_s: float = 30.0) -> None:
        """HTTP, background loops, consumers (each finishing its batch within `timeout_s`), components, producer."""
        self.shutdown.begin()
        await self.http.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for loop in self._loops:
            await loop.stop(timeout_s)
        for component in reversed(self._started):
            await component.stop()
        self._started.clear()
        await self.producer.stop()
        log.info("stopped", service=self.name)

    def loop(self, group: str) -> ConsumerLoop:
        """The running consumer loop of a subscription (for readiness and tests)."""
        return next(loop for loop in self._loops if loop.subscription.name == group)


async def serve(service: Service) -> None:
    """Start `service`, wait for SIGTERM, SIGINT or a crash, then stop it. A signal during the start
    (which waits for Kafka as long as it cannot be reached) ends the start and stops what it began."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    signalled = asyncio.create_task(stop.wait())
    crashed = asyncio.create_task(service.crashed.wait())
    starting = asyncio.create_task(service.start())
    try:
        await asyncio.wait([starting, signalled], return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # A start that failed fails the service.
            await asyncio.wait([signalled, crashed], return_when=asyncio.FIRST_COMPLETED)
        else:
            log.info("stopping before the start finished", service=service.name)
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    finally:
        signalled.cancel()
        crashed.cancel()
        await service.stop()


def run(declare: Callable[[S], Service], settings_class: type[S]) -> None:
    """A service process: read settings once, declare the service, log and trace, serve until stopped."""
    settings = load_settings(settings_class)
    crashed = False

    async def main() -> None:
        nonlocal crashed
        service = declare(settings)
        configure_logging(service.name, settings.log_level)
        configure_tracing(service.name, **service.attributes)
        await serve(service)
        crashed = service.crashed.is_set()

    try:
        asyncio.run(main())
    finally:
        shutdown_tracing()
    if crashed:
        raise SystemExit(1)
