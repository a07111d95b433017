"""Micro-batching across queued requests, and the result cache."""

import pytest

from atelier_devtools.local.stack import SERVICES
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline, start_pipeline

pytestmark = pytest.mark.e2e


def test_queued_requests_form_batches_larger_than_one(deployment) -> None:  # type: ignore[no-untyped-def]
    others = [spec.name for spec in SERVICES if spec.name != "stylizer-quality"]
    pipeline: Pipeline = start_pipeline(
        deployment,
        overrides={"stylizer-quality": {"ATELIER_STYLIZER_MAX_BATCH": "4", "ATELIER_STYLIZER_MAX_WAIT_MS": "200"}},
        names=others,
    )
    try:
        asset_ids = []
        for seed in range(8):
            code, body = pipeline.submit(
                jpeg_bytes(256, 192, seed=seed), brand="acme", tier="production", style="brush"
            )
            assert code == 202
            asset_ids.append(body["asset_id"])
        # Requests are queued on the quality topic while its stylizer is down.
        pipeline.wait_final(asset_ids, stages={"routed"}, timeout_s=60)

        pipeline.services.start("stylizer-quality")
        final = pipeline.wait_final(asset_ids)
        sizes = [status["stylized"]["batch_size"] for status in final.values()]
        assert all(status["stage"] == "exported" for status in final.values())
        assert max(sizes) > 1, sizes
        assert pipeline.metric("stylizer-quality", "atelier_inference_batch_size_count") < len(asset_ids)
    finally:
        pipeline.services.stop_all()


def test_same_image_and_style_twice_runs_inference_once(pipeline: Pipeline) -> None:
    image = jpeg_bytes(300, 200, seed=42)
    first_code, first = pipeline.submit(image, brand="acme", style="tiles")
    assert first_code == 202
    pipeline.wait_final([first["asset_id"]])
    second_code, second = pipeline.submit(image, brand="acme", style="tiles")
    assert second_code == 202
    done = pipeline.wait_final([second["asset_id"]])[second["asset_id"]]

    assert done["stage"] == "exported"
    assert done["stylized"]["cache_hit"] is True
    first_done = pipeline.status(first["asset_id"])
    assert first_done is not None and first_done["stylized"]["cache_hit"] is False
    assert done["stylized"]["object"]["key"] == first_done["stylized"]["object"]["key"]
    assert pipeline.metric("stylizer-quality", "atelier_inference_items_total") == 1
    assert pipeline.metric("stylizer-quality", "atelier_cache_hits_total") == 1
    # Each asset still gets its own renditions.
    assert {r["object"]["key"] for r in done["renditions"]}.isdisjoint(
        {r["object"]["key"] for r in first_done["renditions"]}
    )
