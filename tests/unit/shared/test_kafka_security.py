"""Kafka security settings: what every client connects with, faust's form of it, and secrets kept out
of sight. (Managed Kafka needs TLS and SASL; before these settings no service could connect to it.)"""

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from urllib.parse import unquote_plus

import faust
import faust.auth
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka.errors import KafkaConnectionError

from atelier_shared import AtelierSettings
from atelier_shared.kafka_oauth import TokenRefused
from atelier_shared.settings import SettingsError, load_settings, settings_from
from atelier_status.view import credentials


def test_plaintext_by_default() -> None:
    settings = AtelierSettings(kafka_bootstrap="kafka:9092")
    assert settings.kafka_options() == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}
    assert credentials(settings) is None


def test_sasl_over_tls_with_scram() -> None:
    settings = settings_from(
        AtelierSettings,
        {
            "ATELIER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ATELIER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ATELIER_KAFKA_SASL_USERNAME": "atelier",
            "ATELIER_KAFKA_SASL_PASSWORD": "s3cret-value",
        },
    )
    options = settings.kafka_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("atelier", "s3cret-value")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(settings.model_dump())
    view = credentials(settings)
    assert isinstance(view, faust.SASLCredentials)
    assert (view.username, view.password, view.mechanism.value) == ("atelier", "s3cret-value", "SCRAM-SHA-512")
    assert view.ssl_context is not None


def test_tls_only_gives_faust_ssl_credentials() -> None:
    settings = AtelierSettings(kafka_security_protocol="SSL")
    assert settings.kafka_options()["security_protocol"] == "SSL" and "sasl_mechanism" not in settings.kafka_options()
    assert isinstance(credentials(settings), faust.SSLCredentials)


def test_incomplete_security_settings_are_refused_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ATELIER_KAFKA_SASL_USERNAME", "atelier")
    needed = "ATELIER_KAFKA_SASL_USERNAME and ATELIER_KAFKA_SASL_PASSWORD are needed with SASL"
    with pytest.raises(SettingsError, match=needed) as refused:
        load_settings(AtelierSettings)
    assert "ATELIER_:" not in str(refused.value)  # A check across settings has no one variable to prefix.
    monkeypatch.setenv("ATELIER_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("ATELIER_KAFKA_SSL_CERTFILE", "/etc/atelier/client.pem")
    with pytest.raises(SettingsError, match="ATELIER_KAFKA_SSL_KEYFILE go together"):
        load_settings(AtelierSettings)


SECRET = "client-s3cret:%+"  # Characters RFC 6749's form-encoding of the credentials must carry.


class TokenEndpoint:
    """An OAuth 2.0 token endpoint over real HTTP: grants client "atelier" with its secret, counts
    grants, answers with the lifetime it is given, or is down."""

    def __init__(self, lifetime_s: float | None = 3600) -> None:
        self.lifetime_s = lifetime_s
        self.down = False
        self.granted: list[dict[str, str]] = []

    async def grant(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="down for maintenance")
        form = dict(await request.post())
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":") if scheme == "Basic" else ("", "", "")
        if (unquote_plus(client_id), unquote_plus(secret)) != ("atelier", SECRET) or form.get(
            "grant_type"
        ) != "client_credentials":
            return web.json_response({"error": "invalid_client", "error_description": "unknown client"}, status=401)
        self.granted.append({key: str(value) for key, value in form.items()})
        body: dict[str, object] = {"access_token": f"token-{len(self.granted)}", "token_type": "Bearer"}
        if self.lifetime_s is not None:
            body["expires_in"] = self.lifetime_s
        return web.json_response(body)


@pytest.fixture
async def token_endpoint() -> AsyncIterator[tuple[TokenEndpoint, str]]:
    endpoint = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/oauth2/token", endpoint.grant)
    async with TestServer(app, host="127.0.0.1") as server:
        yield endpoint, str(server.make_url("/oauth2/token"))


def oauth_settings(url: str, secret: str = SECRET) -> AtelierSettings:
    return settings_from(
        AtelierSettings,
        {
            "ATELIER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ATELIER_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "ATELIER_KAFKA_SASL_USERNAME": "atelier",
            "ATELIER_KAFKA_SASL_PASSWORD": secret,
            "ATELIER_KAFKA_OAUTH_TOKEN_URL": url,
            "ATELIER_KAFKA_OAUTH_SCOPE": "kafka",
        },
    )


async def test_oauthbearer_tokens_come_from_the_token_endpoint_and_are_shared(
    token_endpoint: tuple[TokenEndpoint, str],
) -> None:
    """SASL OAUTHBEARER (Confluent Cloud, Strimzi with Keycloak, Azure Event Hubs): every client of a
    process, the status view's faust app included, asks one provider, which asks the endpoint once."""
    endpoint, url = token_endpoint
    settings = oauth_settings(url)
    options = settings.kafka_options()
    assert options["sasl_mechanism"] == "OAUTHBEARER" and "sasl_plain_password" not in options
    provider = options["sasl_oauth_token_provider"]
    assert provider is settings.kafka_options()["sasl_oauth_token_provider"]
    view = credentials(settings)
    assert isinstance(view, faust.auth.OAuthCredentials) and view.oauth_cb is provider and view.ssl_context
    assert [await provider.token() for _ in range(3)] == ["token-1"] * 3
    assert endpoint.granted == [{"grant_type": "client_credentials", "scope": "kafka"}]
    assert SECRET not in repr(provider) and SECRET not in repr(view)


async def test_an_oauthbearer_token_is_renewed_before_it_expires(token_endpoint: tuple[TokenEndpoint, str]) -> None:
    endpoint, url = token_endpoint
    endpoint.lifetime_s = 0.5
    provider = oauth_settings(url).kafka_oauth_tokens
    assert await provider.token() == "token-1"
    await asyncio.sleep(0.45)  # Past 80% of its lifetime: a connection now would get a fresh one.
    assert await provider.token() == "token-2"


async def test_a_token_endpoint_outage_keeps_the_valid_token_then_is_a_connection_error(
    token_endpoint: tuple[TokenEndpoint, str],
) -> None:
    """The Kafka clients retry a connection error; any other error from the provider ended their loops."""
    endpoint, url = token_endpoint
    endpoint.lifetime_s = 0.6
    provider = oauth_settings(url).kafka_oauth_tokens
    assert await provider.token() == "token-1"
    endpoint.down = True
    await asyncio.sleep(0.5)  # Past 80% of its lifetime, not past its end: renewal fails, it still serves.
    assert await provider.token() == "token-1"
    await asyncio.sleep(0.2)
    with pytest.raises(KafkaConnectionError, match="answered 503"):
        await provider.token()
    endpoint.down = False
    assert await provider.token() == "token-2"


async def test_the_status_views_faust_thread_and_the_service_share_the_token(
    token_endpoint: tuple[TokenEndpoint, str],
) -> None:
    """Regression: the provider's asyncio lock, taken from faust's consumer thread (an event loop of
    its own) and the service's loop at once, raised "bound to a different event loop" in one and left
    the other waiting."""
    endpoint, url = token_endpoint
    endpoint.lifetime_s = 0.05  # Every call fetches anew: the lock is taken each time.
    provider = oauth_settings(url).kafka_oauth_tokens
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        async def many() -> None:
            for _ in range(10):
                results.append(await asyncio.wait_for(provider.token(), 5))

        try:
            asyncio.run(many())
        except BaseException as exc:  # noqa: BLE001 - any failure in a thread is the test's failure.
            errors.append(exc)

    await asyncio.wait_for(asyncio.gather(asyncio.to_thread(ask), asyncio.to_thread(ask)), 30)
    assert not errors and len(results) == 20 and all(token.startswith("token-") for token in results)


async def test_a_refused_oauth_client_is_a_clear_error_without_its_secret(
    token_endpoint: tuple[TokenEndpoint, str],
) -> None:
    endpoint, url = token_endpoint
    provider = oauth_settings(url, secret="wrong-s3cret").kafka_oauth_tokens
    with pytest.raises(TokenRefused, match="answered 401: unknown client") as refused:
        await provider.token()
    assert "wrong-s3cret" not in str(refused.value) and not endpoint.granted
    unreachable = oauth_settings("http://127.0.0.1:9/oauth2/token").kafka_oauth_tokens
    with pytest.raises(TokenRefused, match="unreachable"):
        await unreachable.token()


def test_oauthbearer_needs_a_token_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ATELIER_KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.setenv("ATELIER_KAFKA_SASL_USERNAME", "atelier")
    monkeypatch.setenv("ATELIER_KAFKA_SASL_PASSWORD", "client-s3cret")
    with pytest.raises(SettingsError, match="ATELIER_KAFKA_OAUTH_TOKEN_URL is needed with SASL OAUTHBEARER"):
        load_settings(AtelierSettings)
