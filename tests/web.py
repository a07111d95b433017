"""A throwaway HTTP server on loopback, for tests of what calls one (webhooks, the API client)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def answering_posts(path: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """A server answering POST `path` with `handler`, while the context lasts; its base URL."""
    async with answering("POST", path, handler) as url:
        yield url


@asynccontextmanager
async def answering(
    method: str, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]
) -> AsyncIterator[str]:
    """A server answering `method` `path` with `handler`, while the context lasts; its base URL."""
    app = web.Application()
    app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
