"""Signed webhooks: POST the exported event as JSON with an HMAC-SHA256 signature.

Receivers verify `X-Atelier-Signature: sha256=<hex>` as HMAC-SHA256(secret, "<timestamp>." + body)
with the timestamp from `X-Atelier-Timestamp`, reject stale timestamps, and deduplicate on
`X-Atelier-Delivery` (deliveries are at least once).
"""

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from atelier_shared import events


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Whether a signature header is valid (constant-time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


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
    """POST with retries on network errors and 5xx; the outcome, never an exception."""
    body = json.dumps({"type": event_type, "data": payload}, separators=(",", ":"), sort_keys=True).encode()
    result = events.WebhookDelivery(url=url)
    for attempt in range(1, attempts + 1):
        result.attempts = attempt
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Atelier-Event": event_type,
            "X-Atelier-Delivery": delivery_id,
            "X-Atelier-Timestamp": timestamp,
            "X-Atelier-Signature": signature(secret, timestamp, body),
        }
        try:
            async with session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                result.status_code = response.status
                result.error = ""
                if response.status < 500:
                    return result
                result.error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error = repr(exc)
        await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    return result
