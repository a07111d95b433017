"""Service lifecycles: start in order, run until SIGTERM/SIGINT, stop in reverse order."""

import asyncio
import signal
from collections.abc import Callable
from typing import Protocol

from atelier_shared.kafka import EventProducer
from atelier_shared.logging import configure_logging, get_logger
from atelier_shared.metrics import OpsServer, ReadinessCheck
from atelier_shared.runtime import BatchHandler, ConsumerConfig, ConsumerRuntime
from atelier_shared.settings import AtelierSettings
from atelier_shared.storage import ObjectStore
from atelier_shared.tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)


class Lifecycle(Protocol):
    """Something a process starts once and stops once; `crashed` is set if it cannot go on."""

    crashed: asyncio.Event

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PipelineService:
    """A service that consumes its topics with the shared runtime and serves health and metrics."""

    def __init__(
        self,
        name: str,
        settings: AtelierSettings,
        config: ConsumerConfig,
        handler: BatchHandler,
        store: ObjectStore | None,
        extra_checks: dict[str, ReadinessCheck] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.crashed = asyncio.Event()
        self.producer = EventProducer(settings.kafka_bootstrap, client_id=name)
        self.runtime = ConsumerRuntime(name, settings, config, handler, self.producer, crashed_by(self.crashed))
        checks: dict[str, ReadinessCheck] = {"kafka": self._consumer_ready}
        if store is not None:
            checks["store"] = store.ping
        self.ops = OpsServer(settings.ops_host, settings.ops_port, {**checks, **(extra_checks or {})})

    async def _consumer_ready(self) -> bool:
        return self.runtime.ready

    async def start(self) -> None:
        """Start serving ops, then the producer, then consuming."""
        await self.ops.start()
        await self.producer.start()
        await self.runtime.start()
        log.info("started", service=self.name, ops_port=self.ops.port)

    async def stop(self) -> None:
        """Stop consuming (committing what is done), then the producer and ops."""
        await self.runtime.stop()
        await self.producer.stop()
        await self.ops.stop()
        log.info("stopped", service=self.name)


def crashed_by(event: asyncio.Event) -> Callable[[BaseException], None]:
    """A runtime's failure callback that marks its app crashed."""
    return lambda error: event.set()


async def serve(app: Lifecycle) -> None:
    """Start `app`, wait for SIGTERM, SIGINT or the app crashing, then stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(app.crashed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    finally:
        await app.stop()


def run_service(name: str, settings: AtelierSettings, factory: Callable[[], Lifecycle], **attributes: str) -> None:
    """Process entry point: configure logs and tracing, then serve the app the factory builds."""
    configure_logging(name, settings.log_level)
    configure_tracing(name, **attributes)

    apps: list[Lifecycle] = []

    async def main() -> None:
        apps.append(factory())
        await serve(apps[0])

    try:
        asyncio.run(main())
    finally:
        shutdown_tracing()
    if apps and apps[0].crashed.is_set():
        raise SystemExit(1)
