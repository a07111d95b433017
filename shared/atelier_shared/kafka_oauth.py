"""Kafka SASL OAUTHBEARER: access tokens from an OAuth 2.0 token endpoint (RFC 6749's client-credentials
grant), as Confluent Cloud, Strimzi with Keycloak and Azure Event Hubs take them.

One provider serves every connection of a process (aiokafka asks it at each SASL handshake): it keeps
the token and fetches a new one once 80% of its lifetime has passed, so no connection is handed one
about to expire.
"""

import asyncio
import time

import aiohttp
from aiokafka.abc import AbstractTokenProvider

from atelier_shared.errors import TransientError

# Where the endpoint gives no lifetime (expires_in is optional in RFC 6749), one is assumed.
DEFAULT_LIFETIME_S = 300.0
RENEW_AT = 0.8


class TokenRefused(TransientError):
    """The token endpoint did not grant a token (wrong client, secret or scope, or unreachable)."""

    code = "kafka_token_refused"


class ClientCredentialsTokens(AbstractTokenProvider):  # type: ignore[misc]
    """Access tokens for one OAuth client, shared by every Kafka connection of the process."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._client_id = client_id
        self._headers = {"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)}
        self._scope = scope
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token = ""
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # The secret stays out of logs and tracebacks.
        return f"ClientCredentialsTokens({self.url!r}, client_id={self._client_id!r})"

    async def token(self) -> str:
        """A valid access token: the kept one, or a new one from the endpoint."""
        async with self._lock:
            if not self._token or time.monotonic() >= self._renew_at:
                self._token, lifetime = await self._fetch()
                self._renew_at = time.monotonic() + RENEW_AT * lifetime
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", **({"scope": self._scope} if self._scope else {})}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(self.url, data=form, headers=self._headers) as response,
            ):
                body = await response.json(content_type=None)
                if response.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
                    # The endpoint's error code and description, never what was sent.
                    reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
                    raise TokenRefused(f"token endpoint {self.url} answered {response.status}: {reason or 'no token'}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TokenRefused(f"token endpoint {self.url} unreachable or unreadable: {type(exc).__name__}") from exc
        lifetime = body.get("expires_in")
        return str(body["access_token"]), float(lifetime) if lifetime else DEFAULT_LIFETIME_S
