"""Under the embedded stack, a service killed from outside is restarted and its assets end exported."""

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from atelier_devtools.local.broker import MockKafkaCluster
from atelier_devtools.local.s3 import free_port
from atelier_devtools.local.stack import SERVICES, LocalServices
from atelier_devtools.local.supervisor import Exit, Supervisor
from atelier_shared import AtelierSettings
from atelier_shared.settings import settings_from
from tests.conftest import REPO, Deployment, jpeg_bytes
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

STATUS = tuple(spec for spec in SERVICES if spec.name == "status")
# The status Deployment's terminationGracePeriodSeconds: past it, Kubernetes sends SIGKILL.
STATUS_GRACE_S = next(
    doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    for doc in yaml.safe_load_all((REPO / "deploy/k8s/status.yaml").read_text())
    if doc and doc["kind"] == "Deployment"
)


def test_killed_services_are_restarted_and_their_assets_exported(pipeline: Pipeline) -> None:
    """Regression: `make run` restarted nothing: after a kill -9 of the tagger and the exporter,
    assets sat at uploaded or stylized until someone started them by hand."""
    exits: list[Exit] = []
    supervisor = Supervisor(pipeline.services, exits.append, poll_s=0.2)
    supervisor.start()
    try:
        accepted = []
        for seed in range(6):
            code, body = pipeline.submit(jpeg_bytes(seed=seed), brand="acme")
            assert code == 202
            accepted.append(body["asset_id"])
        for name in ("tagger", "exporter"):
            os.kill(pipeline.services.pid(name), signal.SIGKILL)
        done = pipeline.wait_final(accepted, timeout_s=180)
        assert {status["stage"] for status in done.values()} == {"exported"}
        assert {(e.name, e.returncode, e.restart_in_s) for e in exits} == {
            ("tagger", -signal.SIGKILL, 1.0),
            ("exporter", -signal.SIGKILL, 1.0),
        }
        assert pipeline.services.running("tagger") and pipeline.services.running("exporter")
    finally:
        supervisor.stop()


def test_the_status_service_stops_promptly_when_its_kafka_is_gone(deployment: Deployment, tmp_path: Path) -> None:
    """Regression: with its brokers gone, the status service took a minute to stop after SIGTERM
    (faust's stop waited on them, then its consumer thread held the exit), past Kubernetes' 45 s grace
    period, so only a SIGKILL ended it. Its own cluster here: the session's stays up for the others."""
    cluster = MockKafkaCluster(brokers=1)
    environment = {**deployment.environment, "ATELIER_KAFKA_BOOTSTRAP": cluster.bootstrap}
    settings = settings_from(AtelierSettings, environment)
    cluster.create_topics(settings.topics.provisioned_names(), settings.topic_partitions)
    services = LocalServices(environment, tmp_path / "logs", specs=STATUS, cwd=tmp_path)
    try:
        services.start("status")
        services.wait_ready(["status"], timeout_s=90)
        cluster.close()  # Its brokers gone while it runs.
        began = time.monotonic()
        returncode = services.stop("status", timeout_s=40)  # SIGTERM; SIGKILL only past 40 s.
        stopped_in = time.monotonic() - began
    finally:
        services.stop_all()
        cluster.close()
    assert returncode == 0, (returncode, services.log_file("status").read_text()[-2000:])
    assert stopped_in < STATUS_GRACE_S - 15, stopped_in


def test_a_service_waiting_for_kafka_at_start_is_alive_not_ready_and_stops_on_sigterm(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Regression, two bugs of a service whose Kafka cannot be reached, so that it waits in its start:
    it served nothing until the start was done, so Kubernetes' liveness probe failed and restarted the
    pod over and over; and a SIGTERM was only looked at once the start was done, so it never stopped
    until a SIGKILL."""
    unreachable = f"127.0.0.1:{free_port()}"  # Nothing listens there.
    environment = {**deployment.environment, "ATELIER_KAFKA_BOOTSTRAP": unreachable}
    router = tuple(spec for spec in SERVICES if spec.name == "router")
    services = LocalServices(environment, tmp_path / "logs", specs=router, cwd=REPO)
    log = services.log_file("router")
    try:
        services.start("router")
        deadline = time.monotonic() + 60
        while "connecting the producer" not in (log.read_text() if log.is_file() else ""):
            assert time.monotonic() < deadline, "the router never tried to connect"
            time.sleep(0.2)
        assert probe(services.url("router", "/healthz")) == (200, {"status": "ok"})
        assert probe(services.url("router", "/readyz")) == (503, {"ready": False, "starting": True, "checks": {}})
        began = time.monotonic()
        returncode = services.stop("router", timeout_s=20)  # SIGTERM; SIGKILL only past 20 s.
        stopped_in = time.monotonic() - began
    finally:
        services.stop_all()
    assert returncode == 0, (returncode, log.read_text()[-2000:])
    assert stopped_in < 10, stopped_in


def probe(url: str) -> tuple[int, object]:
    """An HTTP GET's status and JSON body, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
