"""Signed webhooks: POST the exported event as JSON with an HMAC-SHA256 signature.

Receivers verify `X-Atelier-Signature: sha256=<hex>` as HMAC-SHA256(secret, "<timestamp>." + body)
with the timestamp from `X-Atelier-Timestamp`, reject stale timestamps, and deduplicate on
`X-Atelier-Delivery` (deliveries are at least once: a receiver may see one again after a crash or
a lost answer).
"""

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

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


async def attempt(
    session: aiohttp.ClientSession,
    url: str,
    secret: bytes,
    event_type: str,
    delivery_id: str,
    payload: dict[str, Any],
    timeout_s: float = 5.0,
) -> events.WebhookDelivery:
    """One signed POST; the outcome (error set unless the receiver answered 2xx), never an exception.

    Retrying is the caller's: atelier_exporter.deliveries schedules attempts on the retry topics.
    """
    body = json.dumps({"type": event_type, "data": payload}, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Atelier-Event": event_type,
        "X-Atelier-Delivery": delivery_id,
        "X-Atelier-Timestamp": timestamp,
        "X-Atelier-Signature": signature(secret, timestamp, body),
    }
    shown = shown_url(url)
    result = events.WebhookDelivery(url=shown)
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        # Not redirected: aiohttp would turn a 301-303 into a GET without the body (and count its 200 as
        # delivered), and send the signed body wherever a 307 or 308 points.
        async with session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as response:
            result.status_code = response.status
            if 300 <= response.status < 400:
                result.error = f"HTTP {response.status}: redirects are not followed; configure the final URL"
            else:
                result.error = "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.error = (type(exc).__name__ + (f": {exc}" if str(exc) else "")).replace(url, shown)
    return result


def shown_url(url: str) -> str:
    """The URL as reports, logs and dead letters show it: without a query or user info, where tokens sit."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
