"""A dead letter replayed after its cause is fixed ends exported, and replays never duplicate renditions."""

import asyncio
import os
import subprocess
import sys

import pytest

from atelier_shared import topics
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline
from tests.kafka import read_topic

pytestmark = pytest.mark.e2e


def _atelier(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **pipeline.deployment.environment}
    return subprocess.run(
        [sys.executable, "-m", "atelier_shared.dead_letters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=pipeline.deployment.workdir,
    )


def test_a_replayed_dead_letter_is_exported_once(pipeline: Pipeline) -> None:
    settings = pipeline.deployment.settings()
    asset_id, key = "partner-late-1", "partner/late.jpg"
    pipeline.intake(asset_id, key)  # Announced before the object is stored: the uploader gives up.
    failed = pipeline.wait_final([asset_id])[asset_id]
    assert failed["stage"] == "failed" and failed["failure"]["error_type"] == "object_missing", failed

    listed = _atelier(pipeline, "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if asset_id in line]
    letter_id = line.split()[0]

    pipeline.store_for_partner(key, jpeg_bytes(seed=9))  # The fix.
    for _ in range(2):  # Replaying twice (an operator's double click) changes nothing more.
        replayed = _atelier(pipeline, "replay", letter_id)
        assert replayed.returncode == 0 and f"replayed {letter_id}" in replayed.stdout, replayed.stderr
    exported = asyncio.run(
        read_topic(
            settings.kafka_bootstrap,
            settings.topics.name(topics.EXPORTED),
            lambda found: sum(record.key == asset_id.encode() for record in found) >= 2,
            timeout_s=120,
        )
    )
    assert sum(record.key == asset_id.encode() for record in exported) == 2  # Both replays went through.
    pipeline.wait_final([asset_id], stages={"exported"})  # The status view folds it too.
    renditions = asyncio.run(pipeline.store.list_keys(settings.bucket_renditions, f"lumen/{asset_id}/"))
    assert len(renditions) == 3, renditions

    unknown = _atelier(pipeline, "replay", "9:999999")
    assert unknown.returncode == 1 and "nothing replayed" in unknown.stderr
