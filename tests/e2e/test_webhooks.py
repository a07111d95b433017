"""Durable webhooks: a receiver that refuses for a while still gets each delivery, once it recovers,
exactly once by delivery id, and the status shows the attempts it took.

Exported events are published straight to the `exported` topic (what the exporter's export half
publishes), so only the uploader, the status view and the exporter run. Retry delays are shortened
by the exporter's setting; the receiver recovers once every delivery has been refused twice, a
condition on what it saw, not on a clock.
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from atelier_shared import events, topics
from tests.conftest import REPO
from tests.e2e.conftest import start_pipeline
from tests.kafka import produce

pytestmark = pytest.mark.e2e

ASSETS = ("hook-a", "hook-b", "hook-c")


class Receiver(ThreadingHTTPServer):
    """Answers 503 until told to accept; records each delivery id and its answer."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.accepting = False
        self.answers: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def count(self, code: int) -> Counter[str]:
        with self.lock:
            return Counter(delivery for delivery, answer in self.answers if answer == code)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        self.rfile.read(int(self.headers["Content-Length"]))
        code = 200 if self.server.accepting else 503
        with self.server.lock:
            self.server.answers.append((self.headers["X-Atelier-Delivery"], code))
        self.send_response(code)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def brands_with_webhook(folder: Path, url: str) -> Path:
    folder.mkdir()
    for path in (REPO / "deploy" / "brands").glob("*.yaml"):
        guidelines = yaml.safe_load(path.read_text())
        if guidelines["brand"] == "acme":
            guidelines["webhook"] = {"url": url, "secret_env": "ACME_WEBHOOK_SECRET"}
        (folder / path.name).write_text(yaml.safe_dump(guidelines))
    return folder


def wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_refusing_receiver_gets_each_delivery_once_after_it_recovers(deployment, receiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    brands = brands_with_webhook(tmp_path / "brands", receiver.url)
    environment = {"ATELIER_BRANDS_DIR": str(brands), "ACME_WEBHOOK_SECRET": "not-a-real-secret"}
    exporter = {**environment, "ATELIER_WEBHOOK_RETRY_DELAYS_S": "[0.3, 0.6, 1.0]"}
    names = ["status", "uploader", "exporter"]
    overrides = {"status": environment, "uploader": environment, "exporter": exporter}
    pipeline = start_pipeline(deployment, overrides=overrides, names=names)
    settings = deployment.settings()
    try:
        for asset_id in ASSETS:
            event = events.AssetExported(
                asset=events.AssetHeader(asset_id=asset_id, brand="acme", tier=events.TIER_PRODUCTION),
                model="brush-quality@2",
            )
            event.asset.timeline.exported_at.CopyFrom(events.now_timestamp())
            topic = settings.topics.name(topics.EXPORTED)
            asyncio.run(produce(settings.kafka_bootstrap, topic, asset_id.encode(), event.SerializeToString()))
        deliveries = {f"{asset_id}:brush-quality@2:render" for asset_id in ASSETS}

        refused = lambda: set(receiver.count(503)) == deliveries and min(receiver.count(503).values()) >= 2  # noqa: E731
        wait_for(refused, 120, "every delivery refused twice")
        receiver.accepting = True
        wait_for(lambda: set(receiver.count(200)) == deliveries, 120, "every delivery accepted after recovery")

        for asset_id in ASSETS:
            delivery = f"{asset_id}:brush-quality@2:render"
            wait_for(
                lambda: (pipeline.status(asset_id) or {}).get("webhooks", {}).get(delivery, {}).get("delivered"),  # noqa: B023
                60,
                f"the status of {asset_id} shows its delivery",
            )
            shown = pipeline.status(asset_id)["webhooks"][delivery]  # type: ignore[index]
            assert shown["attempts"] == receiver.count(503)[delivery] + 1 >= 3
            assert shown["status_code"] == 200 and not shown["error"]
        assert receiver.count(200) == Counter(dict.fromkeys(deliveries, 1))
    finally:
        pipeline.services.stop_all()
