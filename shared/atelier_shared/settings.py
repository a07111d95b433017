"""Explicit settings: one frozen object per service, read from the environment once at start.

Variables are prefixed ATELIER_ (ATELIER_KAFKA_BOOTSTRAP, ...). Defaults point at the local
setup: the endpoints file that `atelier local` writes (ENDPOINTS_FILE) is read as a fallback, so a
service started by hand beside a running local stack finds its broker and store.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from aiokafka.helpers import create_ssl_context
from pydantic import AfterValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from atelier_shared.kafka_oauth import ClientCredentialsTokens, client_credentials_tokens
from atelier_shared.topics import Topics

ENDPOINTS_FILE = Path(".atelier/endpoints.env")
ENV_PREFIX = "ATELIER_"


class SettingsError(SystemExit):
    """Invalid configuration; the message names each variable to fix."""


def _http_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {value!r}")
    return value.rstrip("/")


# A base URL setting: http(s)://host[:port][/path], without a trailing slash.
HttpEndpoint = Annotated[str, AfterValidator(_http_url)]


class AtelierSettings(BaseSettings):
    """Settings every service shares: Kafka, the object store, buckets, brands, logging."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=ENDPOINTS_FILE, extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(1_000, ge=100)
    # How long a fetch may wait at the broker for records. A Kafka broker answers as soon as a record
    # arrives, so there a longer wait costs no latency, only fewer idle round trips. The embedded
    # cluster (librdkafka's mock) holds every fetch for the whole wait (measured: a record took 1.16 s
    # to arrive at 1500 ms, 65 ms at 100, 9 ms at 20), so there the wait is each hop's latency and
    # `atelier local` sets the preview path's low (the rest stays long, for an idle stack that idles).
    kafka_fetch_wait_ms: int = Field(500, ge=1, le=60_000)
    # The same for consumers on an artist's preview path (topics.PREVIEW_PATH, and the status view).
    kafka_preview_fetch_wait_ms: int = Field(500, ge=1, le=60_000)
    # How long the producer holds a record to batch it with others. 0: records still batch while a
    # request is in flight. Measured on the embedded cluster: a record acknowledged in 0.46 ms at 0
    # against 5.7 ms at 5, and a burst of 2,000 at 30,400/s against 25,500/s.
    kafka_linger_ms: int = Field(0, ge=0, le=1_000)
    # Security of every Kafka connection (managed Kafka such as MSK, Confluent Cloud or a TLS-only
    # Strimzi): TLS with the system's CAs or kafka_ssl_cafile (and a client certificate for mutual
    # TLS), SASL PLAIN or SCRAM with a user and password, or SASL OAUTHBEARER with tokens from
    # kafka_oauth_token_url, granted to the OAuth client whose id and secret are the user and password.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_oauth_token_url: HttpEndpoint = ""
    kafka_oauth_scope: str = ""
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    topic_prefix: str = "atelier."
    # Partitions of every topic; the status view's changelog must match its source topics.
    topic_partitions: int = Field(6, ge=1, le=1024)

    s3_endpoint: HttpEndpoint = "http://127.0.0.1:9000"
    # Endpoint used in presigned URLs handed to clients; defaults to s3_endpoint.
    s3_public_endpoint: HttpEndpoint = ""
    s3_access_key: str = "atelier"
    s3_secret_key: SecretStr = SecretStr("atelier-secret")
    s3_region: str = "us-east-1"
    # Where S3 credentials come from: "keys" (the two settings above), or "iam": the environment's
    # identity provider, no keys kept anywhere: a web identity token (IRSA, workload identity
    # federation: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN) exchanged at STS, else container
    # credentials (ECS, EKS Pod Identity), else the instance's metadata service; renewed as they expire.
    s3_credentials: Literal["keys", "iam"] = "keys"
    # STS for the web identity exchange; empty: AWS's (regional where AWS_REGION is set).
    s3_sts_endpoint: HttpEndpoint = ""

    bucket_inbox: str = "atelier-inbox"
    bucket_originals: str = "atelier-originals"
    bucket_stylized: str = "atelier-stylized"
    # Stylized results are working copies and the render cache (uncompressed, 3.1 MB at 1024 px): the
    # store expires them this many days after they were written (a lifecycle rule set by provisioning;
    # 0 keeps them). A cached one used after half that time is written again in place (a cache hit
    # never points the exporter at one about to expire); an expired one is rendered again if asked
    # for; renditions are kept. The status API's link to an expired one answers 404, and a replayed
    # `stylized` event older than this fails.
    stylized_retention_days: int = Field(30, ge=0)
    bucket_renditions: str = "atelier-renditions"
    bucket_models: str = "atelier-models"
    # API keys (hashes only), read by every uploader replica.
    bucket_keys: str = "atelier-keys"

    brands_dir: Path = Path("deploy/brands")

    # Health and Prometheus metrics; port 0 picks a free one.
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(0, ge=0, le=65535)
    log_level: str = "info"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("use one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _kafka_security(self) -> "AtelierSettings":
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            raise ValueError(
                f"{ENV_PREFIX}KAFKA_SASL_USERNAME and {ENV_PREFIX}KAFKA_SASL_PASSWORD are needed with SASL"
            )
        if sasl and self.kafka_sasl_mechanism == "OAUTHBEARER" and not self.kafka_oauth_token_url:
            raise ValueError(f"{ENV_PREFIX}KAFKA_OAUTH_TOKEN_URL is needed with SASL OAUTHBEARER")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError(
                f"{ENV_PREFIX}KAFKA_SSL_CERTFILE and {ENV_PREFIX}KAFKA_SSL_KEYFILE go together "
                "(a client certificate and its key)"
            )
        return self

    def kafka_options(self) -> dict[str, Any]:
        """What every Kafka client (aiokafka's consumer, producer and admin) connects with."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.endswith("SSL"):
            options["ssl_context"] = self.kafka_ssl_context()
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            if self.kafka_sasl_mechanism == "OAUTHBEARER":
                options["sasl_oauth_token_provider"] = self.kafka_oauth_tokens
            else:
                options["sasl_plain_username"] = self.kafka_sasl_username
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    @property
    def kafka_oauth_tokens(self) -> ClientCredentialsTokens:
        """The process's one token provider for SASL OAUTHBEARER (every client shares its token)."""
        return client_credentials_tokens(
            self.kafka_oauth_token_url,
            self.kafka_sasl_username,
            self.kafka_sasl_password.get_secret_value(),
            self.kafka_oauth_scope,
        )

    def kafka_ssl_context(self) -> Any:
        """The TLS context of Kafka connections: the system's CAs, or kafka_ssl_cafile's."""
        return create_ssl_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
            certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
            keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
        )

    @property
    def topics(self) -> Topics:
        """Full topic names under this deployment's prefix."""
        return Topics(self.topic_prefix)

    def buckets(self) -> list[str]:
        """Every bucket Atelier uses."""
        return [
            self.bucket_inbox,
            self.bucket_originals,
            self.bucket_stylized,
            self.bucket_renditions,
            self.bucket_models,
            self.bucket_keys,
        ]


S = TypeVar("S", bound=BaseSettings)


def settings_from(cls: type[S], environment: Mapping[str, str], **overrides: object) -> S:
    """Settings from a mapping of ATELIER_* variables (the endpoints file is not read)."""
    values: dict[str, Any] = {
        name.removeprefix(ENV_PREFIX).lower(): value
        for name, value in environment.items()
        if name.startswith(ENV_PREFIX)
    }
    values.update(overrides)
    return cls(_env_file=None, **values)


def load_settings(cls: type[S]) -> S:
    """Read and validate settings once; exit with a message naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        # A check across settings has no location: its message names the variables itself.
        lines = [
            f"  {prefix}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else f"  {error['msg']}"
            for error in exc.errors()
        ]
        raise SettingsError(f"invalid configuration for {cls.__name__}:\n" + "\n".join(lines)) from None
