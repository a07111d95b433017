"""S3 credentials from the environment's identity provider (ATELIER_S3_CREDENTIALS=iam), no keys configured.

Here the identity is a container credentials endpoint, as EKS Pod Identity's agent (or ECS) serves
it: a pod gets AWS_CONTAINER_CREDENTIALS_FULL_URI and a token file, and trades the token for
temporary credentials, renewed as they expire. A local HTTP server plays the agent (it checks the
token and hands out session credentials); the object store is moto's S3. The web identity path
(IRSA's AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, exchanged at STS) is minio's same provider; it
is not run here because moto routes an unsigned STS call by its body and minio sends it in the query.
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


@pytest.fixture
def agent() -> Iterator[tuple[str, list[str]]]:
    """The credentials endpoint's URL, and the Authorization header of each request it answered."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != TOKEN:
                self.send_response(401)
                self.end_headers()
                return
            expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps(
                {
                    "AccessKeyId": ACCESS_KEY,
                    "SecretAccessKey": "s3cr3t",
                    "Token": "session-token",
                    "Expiration": expiration,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
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


async def test_the_store_works_with_credentials_from_the_pods_identity(
    deployment: Deployment, agent: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = agent
    token = tmp_path / "eks-pod-identity-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    settings = deployment.settings(s3_credentials="iam", s3_access_key="", s3_secret_key="")
    store = ObjectStore(settings)

    await store.put(settings.bucket_originals, "acme/a/original.jpg", b"\xff\xd8 not much of a jpeg", "image/jpeg")
    assert await store.get(settings.bucket_originals, "acme/a/original.jpg") == b"\xff\xd8 not much of a jpeg"
    query = parse_qs(urlparse(store.presigned_url(settings.bucket_originals, "acme/a/original.jpg")).query)
    assert query["X-Amz-Credential"][0].split("/")[0] == ACCESS_KEY  # The pod's credentials sign.
    assert query["X-Amz-Security-Token"] == ["session-token"]
    assert seen == [TOKEN]  # Fetched once with the pod's token, then reused until they expire.
