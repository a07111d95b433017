"""S3 credentials from the environment's identity provider (ATELIER_S3_CREDENTIALS=iam), no keys configured.

Two identities a pod is given, each trading a token for temporary credentials, renewed as they expire:
- a container credentials endpoint, as EKS Pod Identity's agent (or ECS) serves it: the pod gets
  AWS_CONTAINER_CREDENTIALS_FULL_URI and a token file;
- a web identity, as IRSA (or workload identity federation) mounts it: AWS_WEB_IDENTITY_TOKEN_FILE and
  AWS_ROLE_ARN, exchanged at STS by AssumeRoleWithWebIdentity (ATELIER_S3_STS_ENDPOINT points at it).
A local HTTP server plays the agent or STS (moto's STS routes an unsigned call by its body, where the
client sends it in the query); the object store is moto's S3.
"""

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from atelier_shared import ObjectStore
from tests.conftest import Deployment

pytestmark = pytest.mark.service

TOKEN = "pod-identity-token-of-atelier-uploader"
ACCESS_KEY = "ASIAATELIERTEMPORARY"
ROLE = "arn:aws:iam::111122223333:role/atelier"


@pytest.fixture
def agent() -> Iterator[tuple[str, list[str]]]:
    """An identity server's URL, and what each request it answered presented: the container
    credentials endpoint's Authorization header (GET), or the web identity token at STS (POST)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != TOKEN:
                self.answer(401, b"", "text/plain")
                return
            credentials = {
                "AccessKeyId": ACCESS_KEY,
                "SecretAccessKey": "s3cr3t",
                "Token": "session-token",
                "Expiration": expiration(),
            }
            self.answer(200, json.dumps(credentials).encode(), "application/json")

        def do_POST(self) -> None:  # noqa: N802
            query = {key: values[0] for key, values in parse_qs(urlparse(self.path).query).items()}
            seen.append(query.get("WebIdentityToken", ""))
            if (query.get("Action"), query.get("RoleArn"), query.get("WebIdentityToken")) != (
                "AssumeRoleWithWebIdentity",
                ROLE,
                TOKEN,
            ):
                self.answer(403, b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>", "text/xml")
                return
            body = (
                '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                "<AssumeRoleWithWebIdentityResult><Credentials>"
                f"<AccessKeyId>{ACCESS_KEY}</AccessKeyId><SecretAccessKey>s3cr3t</SecretAccessKey>"
                f"<SessionToken>session-token</SessionToken><Expiration>{expiration()}</Expiration>"
                "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            )
            self.answer(200, body.encode(), "text/xml")

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/credentials", seen
    finally:
        server.shutdown()
        server.server_close()


def expiration() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def assert_signed_with_the_pods_credentials(store: ObjectStore, bucket: str) -> None:
    await store.put(bucket, "acme/a/original.jpg", b"\xff\xd8 not much of a jpeg", "image/jpeg")
    assert await store.get(bucket, "acme/a/original.jpg") == b"\xff\xd8 not much of a jpeg"
    query = parse_qs(urlparse(store.presigned_url(bucket, "acme/a/original.jpg")).query)
    assert query["X-Amz-Credential"][0].split("/")[0] == ACCESS_KEY  # The pod's credentials sign.
    assert query["X-Amz-Security-Token"] == ["session-token"]


async def test_the_store_works_with_credentials_from_the_pods_identity(
    deployment: Deployment, agent: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = agent
    token = tmp_path / "eks-pod-identity-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    settings = deployment.settings(s3_credentials="iam", s3_access_key="", s3_secret_key="")
    await assert_signed_with_the_pods_credentials(ObjectStore(settings), settings.bucket_originals)
    assert seen == [TOKEN]  # Fetched once with the pod's token, then reused until they expire.


async def test_the_store_works_with_a_web_identity_exchanged_at_sts(
    deployment: Deployment, agent: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IRSA: the pod's projected service-account token, traded at STS for the role's credentials."""
    url, seen = agent
    token = tmp_path / "eks.amazonaws.com-serviceaccount-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    sts = url.rsplit("/v1/", 1)[0]
    settings = deployment.settings(s3_credentials="iam", s3_access_key="", s3_secret_key="", s3_sts_endpoint=sts)
    await assert_signed_with_the_pods_credentials(ObjectStore(settings), settings.bucket_originals)
    assert seen == [TOKEN]  # One exchange, reused until the credentials expire.
