"""Kafka security settings: what every client connects with, faust's form of it, and secrets kept out
of sight. (Managed Kafka needs TLS and SASL; before these settings no service could connect to it.)"""

import ssl

import faust
import pytest

from atelier_shared import AtelierSettings
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
