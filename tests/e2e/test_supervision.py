"""Under the embedded stack, a service killed from outside is restarted and its assets end exported."""

import os
import signal

import pytest

from atelier_devtools.local.supervisor import Exit, Supervisor
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


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
