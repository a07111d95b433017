"""A service's HTTP server: /healthz (alive), /readyz (every check passes), /metrics, and its own routes."""

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]


class HttpServer:
    """One port per service; services add their routes (the uploader's API) to `routes` before start.

    The application is made at start, after tracing is configured, so OpenTelemetry's aiohttp
    server instrumentation traces every request (health, readiness and metrics excluded).
    """

    def __init__(self, host: str, port: int, max_body_bytes: int = 1024**2) -> None:
        self._host = host
        self._port = port
        self._max_body_bytes = max_body_bytes
        self._checks: dict[str, ReadinessCheck] = {}
        self.routes = web.RouteTableDef()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def check(self, name: str, check: ReadinessCheck) -> None:
        """Add a readiness check; /readyz answers 503 while any fails."""
        self._checks[name] = check

    async def start(self) -> int:
        """Start serving; returns the bound port."""
        app = web.Application(client_max_size=self._max_body_bytes)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None)
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
