"""kill -9 of the stylizer while it holds uncommitted work: nothing lost, no duplicate renditions.

The kill lands while work is held by construction, not by racing a clock: the restarted stylizer
gathers a micro-batch it can never fill (more items than will come, a ten-minute wait), so every
request it fetched sits in that batch, uncommitted, until the kill.
"""

import asyncio
import time
import urllib.request

import pytest

from atelier_shared import topics
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline, start_pipeline
from tests.kafka import group_lag

pytestmark = pytest.mark.e2e

DONE_BEFORE, HELD = 3, 7
HOLD_EVERYTHING = {"ATELIER_STYLIZER_MAX_BATCH": "100", "ATELIER_STYLIZER_MAX_WAIT_MS": "600000"}


def submit(pipeline: Pipeline, seeds: range) -> list[str]:
    asset_ids = []
    for seed in seeds:
        code, body = pipeline.submit(jpeg_bytes(320, 240, seed=seed), brand="acme", tier="production")
        assert code == 202, body
        asset_ids.append(body["asset_id"])
    return asset_ids


def buffered_in_stylizer(pipeline: Pipeline) -> float:
    with urllib.request.urlopen(pipeline.services.url("stylizer-quality", "/metrics"), timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("atelier_buffered_records{"))


def test_stylizer_killed_while_holding_a_batch_loses_nothing(deployment) -> None:  # type: ignore[no-untyped-def]
    # Fail-over off: a pool that holds work without progress looks stalled, and production would move.
    pipeline = start_pipeline(deployment, overrides={"router": {"ATELIER_FAILOVER_ENABLED": "false"}})
    settings = deployment.settings()
    try:
        done = submit(pipeline, range(DONE_BEFORE))
        assert all(s["stage"] == "exported" for s in pipeline.wait_final(done, timeout_s=120).values())

        pipeline.services.stop("stylizer-quality")
        pipeline.services.start("stylizer-quality", HOLD_EVERYTHING)
        pipeline.services.wait_ready(["stylizer-quality"])
        held = submit(pipeline, range(DONE_BEFORE, DONE_BEFORE + HELD))
        deadline = time.monotonic() + 120
        while buffered_in_stylizer(pipeline) < HELD:
            assert time.monotonic() < deadline, "the stylizer did not fetch every request"
            time.sleep(0.2)
        quality_topic = settings.topics.name(topics.STYLIZE_QUALITY)
        group = settings.topics.group("stylizer-quality")
        assert asyncio.run(group_lag(settings.kafka_bootstrap, group, [quality_topic])) == HELD

        assert pipeline.services.stop("stylizer-quality", kill=True) == -9
        pipeline.services.start("stylizer-quality")
        final = pipeline.wait_final(done + held, timeout_s=180)
        assert all(status["stage"] == "exported" for status in final.values()), final

        renditions = asyncio.run(pipeline.store.list_keys(settings.bucket_renditions))
        assert len(renditions) == (DONE_BEFORE + HELD) * 3 and len(set(renditions)) == len(renditions)
        for asset_id in done + held:
            assert sum(1 for key in renditions if f"/{asset_id}/" in key) == 3
        results = asyncio.run(pipeline.store.list_keys(settings.bucket_stylized))
        assert len(results) == DONE_BEFORE + HELD, results
    finally:
        pipeline.services.stop_all()
