"""Who may call the API, and how much: the key check on every route, and each brand's rate and in-flight quota.

Rate limits count per uploader replica (a deployment of N replicas admits up to N times the rate).
The in-flight quota counts the brand's assets that are not yet exported or failed, as the status
service folds them, plus those this replica accepted in the last few seconds (which the status
service may not have folded yet). Without the status service it falls back to this replica's own
recent count rather than refusing uploads: accepting uploads never depends on the status service.
"""

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry import trace

from atelier_shared import BrandBook
from atelier_uploader.keys import KeyRing, Principal

# Routes anyone may call: health and readiness for load balancers, the API's contract and docs, and
# the studio's page (which holds no data: it signs in with a key like any client).
PUBLIC_PATHS = ("/healthz", "/readyz", "/openapi.json", "/docs")
PAGE_PATHS = ("/", "/studio")
PRINCIPAL = web.RequestKey("principal", Principal)
# How long an asset accepted here counts toward its brand's in-flight quota without the status service.
RECENT_S = 10.0
# The oldest reading of the status service admission counts with: one older (the upload waited long
# for validation) is taken again, so that no admission since it is past RECENT_S and counted nowhere.
FRESH_S = RECENT_S / 2


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """The API's error body."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def principal(request: web.Request) -> Principal:
    """The authenticated caller of a request that passed the key check."""
    return request[PRINCIPAL]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (no such route, method not allowed) in the API's error body, as the contract
    says every error is: a path parameter holding a "/" matches no route, and was answered in plain text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        kept = {name: value for name, value in exc.headers.items() if name in ("Allow", "Retry-After")}
        return error(exc.status, code, f"{exc.reason}: {request.method} {request.path}", **kept)


def key_check(ring: KeyRing) -> Middleware:
    """Middleware: every route but PUBLIC_PATHS needs `Authorization: Bearer <key>`."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PATHS) or request.path in PAGE_PATHS or request.path.startswith("/studio/"):
            return await handler(request)
        if not ring.loaded:  # The store has not answered since the start: no key is known yet, good or bad.
            message = "the service is starting (its API keys are not loaded yet): retry shortly"
            return error(503, "starting", message, **{"Retry-After": "2"})
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="atelier"'}
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, "missing_key", "send your API key as `Authorization: Bearer <key>`", **challenge)
        caller = await ring.authenticate(token.strip())
        if caller is None:
            return error(401, "invalid_key", "the API key is unknown or revoked", **challenge)
        request[PRINCIPAL] = caller
        trace.get_current_span().set_attribute("atelier.key_id", caller.key_id)
        return await handler(request)

    return check


class Refused(Exception):
    """Over a limit: answered 429 with Retry-After."""

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class InFlight:
    """The status service's answer: how many of a brand's assets are open, and (up to a limit) which."""

    open: int
    asset_ids: frozenset[str]


@dataclass(frozen=True)
class Reading:
    """What the status service answered for a brand (None: no answer), and when (monotonic seconds)."""

    in_flight: InFlight | None
    at: float


class Quotas:
    """Each brand's rate limit and in-flight quota, from its guidelines (`limits`)."""

    def __init__(self, brands: BrandBook, in_flight: Callable[[str, int], Awaitable[InFlight | None]]) -> None:
        self._brands = brands
        self._in_flight = in_flight
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rates: dict[str, list[RateLimitItem]] = {}
        self._recent: dict[str, dict[str, float]] = defaultdict(dict)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def precheck(self, brand: str, asset_id: str) -> Reading:
        """Refused when the brand is over a rate limit or its in-flight quota now; counts nothing (admit
        does). Asked before an upload is validated, so requests refused anyway cost no decode. Returns
        the status service's reading, which admit counts with: the service is asked once per upload
        (unless validation took long), and never under the brand's lock (a slow answer would queue
        the brand's other uploads)."""
        await self.check_rate(brand)
        reading = await self._read(brand)
        self._check_quota(brand, asset_id, reading.in_flight)
        return reading

    async def admit(self, brand: str, asset_id: str, reading: Reading) -> None:
        """Count a submission against the brand's limits, given precheck's reading (taken again when
        older than FRESH_S); Refused when over one. This replica's recent admissions cover what the
        reading predates."""
        if time.monotonic() - reading.at > FRESH_S:
            fresh = await self._read(brand)
            reading = fresh if fresh.in_flight is not None else reading  # No answer: the older one still counts.
        async with self._locks[brand]:
            await self.check_rate(brand)
            self._check_quota(brand, asset_id, reading.in_flight)
            for rate in self._rates_of(brand):
                await self._limiter.hit(rate, brand)
            self._recent[brand][asset_id] = time.monotonic()

    async def check_rate(self, brand: str) -> None:
        """Refused when the brand is over a rate limit now (counts nothing)."""
        for rate in self._rates_of(brand):
            if not await self._limiter.test(rate, brand):
                stats = await self._limiter.get_window_stats(rate, brand)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise Refused("rate_limited", f"over the brand's rate limit of {rate}; retry later", retry)

    async def _read(self, brand: str) -> Reading:
        at = time.monotonic()
        return Reading(await self._in_flight(brand, self._quota(brand)), at)

    def _quota(self, brand: str) -> int:
        return self._brands.get(brand).limits.in_flight

    def _rates_of(self, brand: str) -> list[RateLimitItem]:
        rate = self._brands.get(brand).limits.rate
        return self._rates.setdefault(rate, parse_many(rate))

    def release(self, brand: str, asset_id: str) -> None:
        """Give back a reservation whose upload was refused after admission."""
        self._recent[brand].pop(asset_id, None)

    def _check_quota(self, brand: str, asset_id: str, known: InFlight | None) -> None:
        quota, now = self._quota(brand), time.monotonic()
        recent = self._recent[brand]
        for stale in [a for a, at in recent.items() if now - at > RECENT_S]:
            del recent[stale]
        ids = known.asset_ids if known else frozenset()
        others = (ids | recent.keys()) - {asset_id}
        in_flight = max(len(others), known.open - (asset_id in ids) if known else 0)
        if in_flight >= quota:
            message = f"{in_flight} assets of this brand are in flight (quota {quota}); retry when some finish"
            raise Refused("quota_exceeded", message, 5)
