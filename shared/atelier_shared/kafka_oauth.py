"""Kafka SASL OAUTHBEARER: access tokens from an OAuth 2.0 token endpoint (RFC 6749's client-credentials
grant), as Confluent Cloud, Strimzi with Keycloak and Azure Event Hubs take them.

One provider serves every connection of a process (aiokafka asks it at each SASL handshake, from the
service's event loop and from the status view's faust thread, which runs its own): it keeps the token
and fetches a new one once 80% of its lifetime has passed. Where the endpoint cannot be reached then,
the kept token serves until it expires; after that a handshake fails as a connection error, which the
Kafka clients retry.
"""

import asyncio
import functools
import json
import threading
import time
import weakref
from urllib.parse import quote

import aiohttp
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError

from atelier_shared.errors import TransientError

# Where the endpoint gives no lifetime (expires_in is optional in RFC 6749), one is assumed.
DEFAULT_LIFETIME_S = 300.0
RENEW_AT = 0.8


class TokenRefused(TransientError, KafkaConnectionError):  # type: ignore[misc]
    """No token could be had (wrong client, secret or scope, or the endpoint unreachable). A Kafka
    connection error too, so the clients retry the connection rather than stop."""

    code = "kafka_token_refused"


class ClientCredentialsTokens(AbstractTokenProvider):  # type: ignore[misc]
    """Access tokens for one OAuth client, shared by every Kafka connection of the process."""

    def __init__(self, url: str, client_id: str, client_secret: str, scope: str = "", timeout_s: float = 10.0) -> None:
        self.url = url
        self._client_id = client_id
        # RFC 6749 2.3.1: the id and secret are form-encoded before the Basic scheme joins them.
        credentials = aiohttp.encode_basic_auth(quote(client_id, safe=""), quote(client_secret, safe=""))
        self._headers = {"Authorization": credentials}
        self._scope = scope
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token = ""
        self._renew_at = 0.0
        self._expires_at = 0.0
        self._state = threading.Lock()  # The token is shared across threads (faust's has its own loop).
        self._fetching: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:  # The secret stays out of logs and tracebacks.
        return f"ClientCredentialsTokens({self.url!r}, client_id={self._client_id!r})"

    async def token(self) -> str:
        """A valid access token: the kept one, or a new one from the endpoint."""
        with self._state:
            fetching = self._fetching.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with fetching:  # One fetch at a time per event loop; another loop may fetch alongside.
            with self._state:
                if self._token and time.monotonic() < self._renew_at:
                    return self._token
            try:
                token, lifetime = await self._fetch()
            except TokenRefused:
                with self._state:
                    if self._token and time.monotonic() < self._expires_at:
                        return self._token  # Renewal failed; the kept token is still good.
                raise
            with self._state:
                now = time.monotonic()
                self._token, self._renew_at, self._expires_at = token, now + RENEW_AT * lifetime, now + lifetime
                return token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", **({"scope": self._scope} if self._scope else {})}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(self.url, data=form, headers=self._headers) as response,
            ):
                try:
                    body = json.loads(await response.text())
                except ValueError:
                    body = None  # An error page, not the endpoint's JSON.
                if response.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
                    # The endpoint's error code and description, never what was sent.
                    reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
                    raise TokenRefused(f"token endpoint {self.url} answered {response.status}: {reason or 'no token'}")
                lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_S)
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError) as exc:
            raise TokenRefused(f"token endpoint {self.url} unreachable or unreadable: {type(exc).__name__}") from exc
        return str(body["access_token"]), lifetime


@functools.cache
def client_credentials_tokens(url: str, client_id: str, client_secret: str, scope: str) -> ClientCredentialsTokens:
    """The process's one provider for an OAuth client (every settings object naming it shares it)."""
    return ClientCredentialsTokens(url, client_id, client_secret, scope)
