"""kill -9 of the stylizer while it holds uncommitted work: nothing lost, no duplicate renditions."""

import asyncio
import time

import pytest

from atelier_shared import topics
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline, start_pipeline
from tests.kafka import group_lag

pytestmark = pytest.mark.e2e

ASSETS = 10


def test_stylizer_killed_mid_batch_loses_nothing(deployment) -> None:  # type: ignore[no-untyped-def]
    # Larger images and one-at-a-time batches stretch the work, so the kill lands mid-backlog.
    slow = {"ATELIER_STYLIZER_WORKING_SIDE": "384", "ATELIER_STYLIZER_MAX_BATCH": "1"}
    pipeline: Pipeline = start_pipeline(deployment, overrides={"stylizer-quality": slow})
    try:
        settings = deployment.settings()
        asset_ids = []
        for seed in range(ASSETS):
            code, body = pipeline.submit(jpeg_bytes(640, 480, seed=seed), brand="acme", tier="production")
            assert code == 202, body
            asset_ids.append(body["asset_id"])

        # Kill as soon as some, not all, are stylized: the rest is fetched or queued, uncommitted.
        deadline = time.monotonic() + 60
        stylized = 0
        while time.monotonic() < deadline:
            stylized = sum(1 for a in asset_ids if (pipeline.status(a) or {}).get("stylized"))
            if stylized >= 1:
                break
            time.sleep(0.05)
        assert 1 <= stylized < ASSETS, f"{stylized} stylized before the kill: the window was missed"
        assert pipeline.services.stop("stylizer-quality", kill=True) == -9
        quality_topic = settings.topics.name(topics.STYLIZE_QUALITY)
        lag = asyncio.run(
            group_lag(settings.kafka_bootstrap, settings.topics.group("stylizer-quality"), [quality_topic])
        )
        assert lag > 0, "the stylizer held no uncommitted work when killed"

        pipeline.services.start("stylizer-quality")
        final = pipeline.wait_final(asset_ids, timeout_s=180)
        assert all(status["stage"] == "exported" for status in final.values()), final

        renditions = asyncio.run(pipeline.store.list_keys(settings.bucket_renditions))
        assert len(renditions) == ASSETS * 3, renditions
        assert len(set(renditions)) == len(renditions)
        for asset_id in asset_ids:
            assert sum(1 for key in renditions if f"/{asset_id}/" in key) == 3
        results = asyncio.run(pipeline.store.list_keys(settings.bucket_stylized))
        assert len(results) == ASSETS, results
    finally:
        pipeline.services.stop_all()
