"""A service's HTTP server while the service starts: alive at once, ready and serving only once open."""

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from atelier_shared.runtime.http import HttpServer, Listener


async def test_until_open_only_health_and_metrics_answer_then_everything_does() -> None:
    """Regression: the listeners opened only once the start was done, so a liveness probe failed (and
    Kubernetes restarted the pod) while a service waited for Kafka or its models."""
    server = HttpServer("127.0.0.1", 0)
    server.check("store", _passing)

    @server.routes.get("/v1/thing")
    async def thing(_request: web.Request) -> web.Response:
        return web.json_response({"thing": 1})

    @web.middleware
    async def key_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer key" and request.path.startswith("/v1/"):
            return web.json_response({"error": {"code": "missing_key"}}, status=401)
        return await handler(request)

    server.expose(Listener("127.0.0.1", 0, middlewares=(key_check,)))
    ops = await server.start()
    public = server.public_port
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer key"}) as session:

            async def get(port: int, path: str) -> tuple[int, object]:
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    return response.status, await response.json() if path != "/metrics" else None

            assert await get(ops, "/healthz") == (200, {"status": "ok"})
            assert (await get(ops, "/metrics"))[0] == 200
            for port in (ops, public):
                assert await get(port, "/readyz") == (503, {"ready": False, "starting": True, "checks": {}})
            starting = {"error": {"code": "starting", "message": "the service is starting: retry shortly"}}
            assert await get(public, "/v1/thing") == (503, starting)
            # Starting comes before the service's own middlewares (an uploader's keys are not loaded yet).
            assert await anonymous(f"http://127.0.0.1:{public}/v1/thing") == 503

            server.open()
            assert await get(ops, "/readyz") == (200, {"ready": True, "checks": {"store": True}})
            assert await get(public, "/v1/thing") == (200, {"thing": 1})
            assert await anonymous(f"http://127.0.0.1:{public}/v1/thing") == 401
            assert await get(public, "/healthz") == (200, {"status": "ok"})
    finally:
        await server.stop()


async def _passing() -> bool:
    return True


async def anonymous(url: str) -> int:
    """The status of a GET without a key."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status
