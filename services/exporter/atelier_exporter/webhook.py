"""Signed webhooks: POST the exported event as JSON with an HMAC-SHA256 signature.

Receivers verify `X-Atelier-Signature: sha256=<hex>` as HMAC-SHA256(secret, "<timestamp>." + body)
with the timestamp from `X-Atelier-Timestamp`, reject stale timestamps, and deduplicate on
`X-Atelier-Delivery` (deliveries are at least once).
"""

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential

from atelier_shared import events


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Whether a signature header is valid (constant-time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def delivery_id(exported: events.AssetExported) -> str:
    """Stable per asset and render: receivers deduplicate redeliveries on it."""
    kind = "rerender" if exported.route.rerender else "render"
    return f"{exported.asset.asset_id}:{exported.model}:{kind}"


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    secret: bytes,
    event_type: str,
    delivery_id: str,
    payload: dict[str, Any],
    attempts: int = 3,
    timeout_s: float = 5.0,
) -> events.WebhookDelivery:
    """POST, retrying network errors and 5xx with back-off; the outcome, never an exception."""
    body = json.dumps({"type": event_type, "data": payload}, separators=(",", ":"), sort_keys=True).encode()
    made = 0

    async def post() -> events.WebhookDelivery:
        nonlocal made
        made += 1
        result = events.WebhookDelivery(url=url, attempts=made)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Atelier-Event": event_type,
            "X-Atelier-Delivery": delivery_id,
            "X-Atelier-Timestamp": timestamp,
            "X-Atelier-Signature": signature(secret, timestamp, body),
        }
        try:
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            async with session.post(url, data=body, headers=headers, timeout=timeout) as response:
                result.status_code = response.status
                result.error = f"HTTP {response.status}" if response.status >= 500 else ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error = repr(exc)
        return result

    policy = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=30),
        retry=retry_if_result(lambda result: bool(result.error)),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    delivered: events.WebhookDelivery = await policy(post)
    return delivered
