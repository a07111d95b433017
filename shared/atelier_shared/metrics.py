"""Prometheus metrics every service shares, and the HTTP server for health and metrics."""

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

MESSAGES = Counter(
    "atelier_messages_total",
    "Kafka records handled, by outcome (ok, dead_lettered).",
    ["service", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "atelier_handle_seconds",
    "Time to handle one batch of records, produce its outputs and commit.",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_WAIT_SECONDS = Histogram(
    "atelier_queue_wait_seconds",
    "Time from a record's produce to the start of its handling.",
    ["service", "topic"],
    buckets=_LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "atelier_batch_size",
    "Records per handled batch.",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
DEAD_LETTERS = Counter(
    "atelier_dead_letters_total", "Records sent to the dead-letter topic.", ["service", "error_type"]
)
RETRIES = Counter("atelier_retries_total", "Handling attempts retried after a failure.", ["service", "error_type"])
BUFFERED = Gauge("atelier_buffered_records", "Records fetched and not yet handled.", ["service", "topic"])
PAUSED_PARTITIONS = Gauge("atelier_paused_partitions", "Partitions paused for backpressure.", ["service"])
STAGE_SECONDS = Histogram(
    "atelier_stage_seconds",
    "Per-stage latency (tag, route, decode, inference, encode, export, ...).",
    ["service", "stage"],
    buckets=_LATENCY_BUCKETS,
)

ReadinessCheck = Callable[[], Awaitable[bool]]


class OpsServer:
    """Serves /healthz (alive), /readyz (every check passes) and /metrics on one port."""

    def __init__(
        self,
        host: str,
        port: int,
        checks: Mapping[str, ReadinessCheck],
        app: web.Application | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._checks = dict(checks)
        self.app = app or web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> int:
        """Start serving; returns the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        results = {name: await check() for name, check in self._checks.items()}
        status = 200 if all(results.values()) else 503
        return web.json_response({"ready": status == 200, "checks": results}, status=status)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response
