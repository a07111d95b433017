"""End-to-end fixtures: the five services as processes against the session's infrastructure."""

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from atelier_devtools.local.stack import LIGHT_STYLIZERS, LocalServices
from atelier_shared import ObjectStore, events, topics
from atelier_uploader.keys import ADMIN
from tests.conftest import Deployment
from tests.kafka import produce
from tests.models import make_and_publish

FINAL = {"exported", "failed"}
# The samples that show where records are: handled, buffered, in handling, retried, dead-lettered.
DIAGNOSTIC_METRICS = (
    "atelier_messages_total",
    "atelier_buffered_records",
    "atelier_handling_records",
    "atelier_retries_total",
    "atelier_dead_letters_total",
    "atelier_paused_partitions",
)


@dataclass
class Pipeline:
    """A running pipeline and a client for its API."""

    deployment: Deployment
    services: LocalServices
    store: ObjectStore
    # An API key per brand, and the admin key under ADMIN.
    keys: dict[str, str]

    @property
    def api(self) -> str:
        return self.services.api_url()

    def authorization(self, brand: str = ADMIN) -> dict[str, str]:
        """The Authorization header of a brand's key (the admin key by default)."""
        return {"Authorization": f"Bearer {self.keys[brand]}"}

    def submit(
        self, data: bytes, brand: str = "acme", headers: dict[str, str] | None = None, **fields: str
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/assets with raw bytes and the brand's key (the admin key for others); (status, JSON body)."""
        key = brand if brand in self.keys else ADMIN
        query = urllib.parse.urlencode({"brand": brand, **fields})
        request = urllib.request.Request(
            f"{self.api}/v1/assets?{query}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/octet-stream", **self.authorization(key), **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    @property
    def partner_bucket(self) -> str:
        """Another system's bucket, which intake events name."""
        return f"{self.deployment.bucket_prefix}partner"

    def store_for_partner(self, key: str, data: bytes) -> None:
        """Store an object as another system does, in its own bucket."""
        asyncio.run(self.store.ensure_buckets([self.partner_bucket]))
        asyncio.run(self.store.put(self.partner_bucket, key, data, "application/octet-stream"))

    def intake(self, asset_id: str, key: str, brand: str = "lumen") -> None:
        """Publish what another system publishes for an object it stored (or says it stored) in its bucket."""
        settings = self.deployment.settings()
        event = events.AssetSubmitted(
            asset_id=asset_id, brand=brand, tier=events.TIER_PRODUCTION, bucket=self.partner_bucket, key=key
        )
        topic = settings.topics.name(topics.INTAKE)
        asyncio.run(produce(settings.kafka_bootstrap, topic, asset_id.encode(), event.SerializeToString()))

    def status(self, asset_id: str, brand: str = ADMIN) -> dict[str, Any] | None:
        """GET /v1/assets/{id} with a brand's key (the admin key by default), or None on 404."""
        request = urllib.request.Request(f"{self.api}/v1/assets/{asset_id}", headers=self.authorization(brand))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def wait_final(
        self, asset_ids: Iterable[str], timeout_s: float = 120.0, stages: set[str] = FINAL
    ) -> dict[str, dict[str, Any]]:
        """Poll until every asset reached one of `stages`; fail naming the stragglers."""
        pending = set(asset_ids)
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for asset_id in list(pending):
                status = self.status(asset_id)
                if status is not None and status["stage"] in stages:
                    done[asset_id] = status
                    pending.discard(asset_id)
            time.sleep(0.25)
        assert not pending, f"not final after {timeout_s} s: {self.where(pending)}\n{self.diagnosis()}"
        return done

    def where(self, asset_ids: Iterable[str]) -> dict[str, Any]:
        """Each asset's stage and the events the status view folded (a view that missed one stage's event
        shows the stage before it), or why the API could not say."""
        found: dict[str, Any] = {}
        for asset_id in asset_ids:
            try:
                status = self.status(asset_id) or {}
                found[asset_id] = {"stage": status.get("stage"), "reached": status.get("reached")}
            except OSError as exc:  # The uploader down, or answering 5xx (HTTPError is an OSError).
                found[asset_id] = repr(exc)
        return found

    def diagnosis(self) -> str:
        """What each service holds and last complained of: where a stuck asset stopped, in CI's output."""
        lines = []
        for name in self.services.specs:
            lines.append(f"-- {name}: {'running' if self.services.running(name) else 'not running'}")
            try:
                with urllib.request.urlopen(self.services.url(name, "/metrics"), timeout=5) as response:
                    text = response.read().decode()
                lines += [
                    f"   {line}"
                    for line in text.splitlines()
                    if line.startswith(DIAGNOSTIC_METRICS) and not line.endswith(" 0.0")
                ]
            except OSError as exc:
                lines.append(f"   /metrics: {exc!r}")
            log = self.services.log_file(name)
            text = log.read_text(errors="replace") if log.exists() else ""
            complaints = [line for line in text.splitlines() if '"level": "info"' not in line]
            lines += [f"   {line[:400]}" for line in complaints[-8:]]
        return "\n".join(lines)

    def metric(self, service: str, name: str) -> float:
        """Sum of a Prometheus metric's samples on a service's /metrics."""
        with urllib.request.urlopen(self.services.url(service, "/metrics"), timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def start_pipeline(
    deployment: Deployment, overrides: dict[str, dict[str, str]] | None = None, names: list[str] | None = None
) -> Pipeline:
    """Publish tiny models, start the services (all, or `names`), wait until ready."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    make_and_publish(deployment.workdir / "models", store, settings.bucket_models)
    keys = deployment.infra.create_keys(settings)
    merged = {
        name: {**LIGHT_STYLIZERS.get(name, {}), **(overrides or {}).get(name, {})}
        for name in {*LIGHT_STYLIZERS, *(overrides or {})}
    }
    services = LocalServices(
        deployment.environment, deployment.workdir / "logs", overrides=merged, cwd=deployment.workdir
    )
    services.start_ready(names)
    return Pipeline(deployment, services, store, keys)


@pytest.fixture
def pipeline(deployment: Deployment) -> Iterator[Pipeline]:
    """All services running for one test."""
    running = start_pipeline(deployment)
    yield running
    running.services.stop_all()
