"""HTTP upload of a real photo, through all five services, traced as one trace."""

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "content" / "amber.jpg"
PIPELINE_ORDER = ["uploader", "tagger", "router", "stylizer", "exporter"]
# The topic each service consumes on the pipeline's way (the router also reads `exported`, for re-renders).
CONSUMED = {"tagger": "uploaded", "router": "tagged", "stylizer": "stylize.quality", "exporter": "stylized"}


def test_http_upload_exports_every_rendition_in_one_trace(pipeline: Pipeline) -> None:
    code, body = pipeline.submit(PHOTO.read_bytes(), brand="acme", tier="production")
    assert code == 202, body
    asset_id, trace_id = body["asset_id"], body["trace_id"]

    status = pipeline.wait_final([asset_id])[asset_id]
    assert status["stage"] == "exported", status
    assert status["reached"] == ["uploaded", "tagged", "routed", "stylized", "exported"]
    assert status["tags"]["orientation"] == "square"
    assert status["route"]["model_tier"] == "quality" and status["route"]["reason"]
    assert {r["profile"] for r in status["renditions"]} == {"web", "thumbnail", "print"}
    for rendition in status["renditions"]:
        stored = asyncio.run(pipeline.store.stat(rendition["object"]["bucket"], rendition["object"]["key"]))
        assert stored is not None and stored.size == int(rendition["object"]["size"])
    print_rendition = next(r for r in status["renditions"] if r["profile"] == "print")
    assert (print_rendition["object"]["width"], print_rendition["object"]["height"]) == (1080, 1080)

    # Spans are exported in batches, a parent after its children: wait (bounded) until every service's
    # processing span arrived (waiting for any exporter span raced the exporter's last batch).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        spans = pipeline.deployment.infra.traces.spans(trace_id)
        if all(
            any(s.service == service and s.name.endswith("." + topic) for s in spans)
            for service, topic in CONSUMED.items()
        ):
            break
        time.sleep(0.2)
    by_id = {span.span_id: span for span in spans}
    assert {span.service for span in spans} >= set(PIPELINE_ORDER)

    # Each service's processing span is a child of a span of the service before it.
    for previous, current in zip(PIPELINE_ORDER, PIPELINE_ORDER[1:], strict=False):
        process = [s for s in spans if s.service == current and s.name.endswith("." + CONSUMED[current])]
        assert process, f"no processing span from {current}"
        parents = {by_id[s.parent_span_id].service for s in process if s.parent_span_id in by_id}
        assert parents == {previous}, f"{current}'s processing span should be a child of {previous}'s, got {parents}"
    stage_spans = {s.name for s in spans}
    assert {"queue wait", "inference", "s3 GetObject", "s3 PutObject"} <= stage_spans
    # Regression: the stylizer's cache lookup ran outside any span, so each batch left a trace of its own.
    assert any(s.service == "stylizer" and s.name == "s3 HeadObject" for s in spans)
