"""A service's HTTP server: /healthz (alive), /readyz (every check passes), /metrics, and its own routes.

The listeners open first thing in a service's start, which may wait long (for Kafka, for models):
from then on /healthz answers, so a liveness probe does not restart a service that is starting,
while /readyz and the service's routes answer 503 until the start is done (`open()`).

Health, readiness and metrics answer on the operations listener. A service with a public API (the
uploader) exposes its routes on a listener of their own, behind its middlewares, with health and
readiness for load balancers but never the metrics.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

ReadinessCheck = Callable[[], Awaitable[bool]]
# A server-sent event stream's headers: never cached, never buffered by a proxy (nginx reads the last).
EVENT_STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class Listener:
    """Where an application listens."""

    host: str
    port: int
    max_body_bytes: int = 1024**2
    middlewares: tuple[Middleware, ...] = ()


class HttpServer:
    """The operations listener, and a public one where a service exposes its routes.

    Services add their routes to `routes` before start. Applications are made at start, after tracing
    is configured, so OpenTelemetry's aiohttp server instrumentation traces every request (health,
    readiness and metrics excluded).
    """

    def __init__(self, host: str, port: int) -> None:
        self._ops = Listener(host, port)
        self._public: Listener | None = None
        self._checks: dict[str, ReadinessCheck] = {}
        self.routes = web.RouteTableDef()
        self._runners: list[web.AppRunner] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.port = 0
        self.public_port = 0
        self.opened = False

    def check(self, name: str, check: ReadinessCheck) -> None:
        """Add a readiness check; /readyz answers 503 while any fails."""
        self._checks[name] = check

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback` as the server stops, before it waits for requests in flight: it ends
        long-lived responses (event streams), which would otherwise hold the stop for a minute, and
        refuses new ones."""
        self._on_stop.append(callback)

    def expose(self, listener: Listener) -> None:
        """Serve the routes on a public listener of their own (declared before start)."""
        self._public = listener

    async def start(self) -> int:
        """Start serving /healthz and /metrics, the rest answering 503 until `open()`; returns the
        operations port (the public one is `public_port`)."""
        ops = self._app(self._ops)
        ops.router.add_get("/metrics", self._metrics)
        if self._public is None:
            ops.add_routes(self.routes)
        self.port = await self._serve(ops, self._ops)
        if self._public is not None:
            public = self._app(self._public)
            public.add_routes(self.routes)
            self.public_port = await self._serve(public, self._public)
        return self.port

    def open(self) -> None:
        """The service has started: readiness checks run and the routes serve."""
        self.opened = True

    async def stop(self) -> None:
        """Stop serving."""
        for callback in self._on_stop:
            await callback()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    def _app(self, listener: Listener) -> web.Application:
        middlewares = [self._until_open, *listener.middlewares]
        app = web.Application(client_max_size=listener.max_body_bytes, middlewares=middlewares)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _serve(self, app: web.Application, listener: Listener) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, listener.host, listener.port).start()
        return int(runner.addresses[0][1])

    @web.middleware
    async def _until_open(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.opened or request.path in ("/healthz", "/metrics"):
            return await handler(request)
        if request.path == "/readyz":
            body: dict[str, object] = {"ready": False, "starting": True, "checks": {}}
        else:  # The APIs' error body.
            body = {"error": {"code": "starting", "message": "the service is starting: retry shortly"}}
        return web.json_response(body, status=503, headers={"Retry-After": "1"})

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        results = {name: await check() for name, check in self._checks.items()}
        status = 200 if all(results.values()) else 503
        return web.json_response({"ready": status == 200, "checks": results}, status=status)

    async def _metrics(self, request: web.Request) -> web.Response:
        """Prometheus's text format, or OpenMetrics (with exemplars) where the scraper asks for it."""
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(REGISTRY), headers={"Content-Type": content_type})
