"""kill -9 of one service of each class while it holds uncommitted work: nothing lost, no duplicate
renditions. Intake (the uploader's intake-event consumer), per-record (the tagger) and batching (the
stylizer).

The kill lands while work is held by construction, not by racing a clock, and the test proves it is
held before killing: the service has fetched every record (buffered or being handled, by its own
metrics) and its group has committed none of them (group lag). The stylizer gathers a micro-batch it
can never fill (more items than will come, a ten-minute wait); the uploader and the tagger are
handling records whose object-store reads hang, because the S3 endpoint is frozen (SIGSTOP) until
after the kill.
"""

import asyncio
import time
import urllib.request

import pytest

from atelier_shared import events, topics
from tests.conftest import jpeg_bytes, s3_frozen
from tests.e2e.conftest import Pipeline, start_pipeline
from tests.kafka import group_lag, read_topic

pytestmark = pytest.mark.e2e

DONE_BEFORE, HELD = 3, 7
HOLD_EVERYTHING = {"ATELIER_STYLIZER_MAX_BATCH": "100", "ATELIER_STYLIZER_MAX_WAIT_MS": "600000"}
# A killed member's partitions pass to its successor once its session expires (10 s by default).
QUICK_EXPIRY = {"ATELIER_KAFKA_SESSION_TIMEOUT_MS": "4000"}


def submit(pipeline: Pipeline, seeds: range) -> list[str]:
    asset_ids = []
    for seed in seeds:
        code, body = pipeline.submit(jpeg_bytes(320, 240, seed=seed), brand="acme", tier="production")
        assert code == 202, body
        asset_ids.append(body["asset_id"])
    return asset_ids


def held_by(pipeline: Pipeline, service: str) -> float:
    """Records a service has fetched and not finished: buffered plus being handled (its own metrics;
    0 while its HTTP server is not up yet)."""
    try:
        with urllib.request.urlopen(pipeline.services.url(service, "/metrics"), timeout=10) as response:
            lines = response.read().decode().splitlines()
    except OSError:
        return 0.0
    held = ("atelier_buffered_records{", "atelier_handling_records{")
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(held))


def wait_held(pipeline: Pipeline, service: str, group: str, topic: topics.TopicSpec[object], count: int) -> None:
    """Until `service` holds `count` records; then its group must have committed none of them."""
    deadline = time.monotonic() + 120
    while held_by(pipeline, service) < count:
        assert time.monotonic() < deadline, f"{service} did not fetch every record"
        time.sleep(0.2)
    settings = pipeline.deployment.settings()
    name, group_id = settings.topics.name(topic), settings.topics.group(group)
    assert asyncio.run(group_lag(settings.kafka_bootstrap, group_id, [name])) == count


def assert_exported_once(pipeline: Pipeline, asset_ids: list[str]) -> None:
    final = pipeline.wait_final(asset_ids, timeout_s=180)
    assert all(status["stage"] == "exported" for status in final.values()), final
    settings = pipeline.deployment.settings()
    renditions = asyncio.run(pipeline.store.list_keys(settings.bucket_renditions))
    for asset_id in asset_ids:
        assert sum(1 for key in renditions if f"/{asset_id}/" in key) == 3


def test_stylizer_killed_while_holding_a_batch_loses_nothing(deployment) -> None:  # type: ignore[no-untyped-def]
    # Fail-over off: a pool that holds work without progress looks stalled, and production would move.
    overrides = {"router": {"ATELIER_FAILOVER_ENABLED": "false"}, "stylizer-quality": QUICK_EXPIRY}
    pipeline = start_pipeline(deployment, overrides=overrides)
    settings = deployment.settings()
    try:
        done = submit(pipeline, range(DONE_BEFORE))
        assert all(s["stage"] == "exported" for s in pipeline.wait_final(done, timeout_s=120).values())

        pipeline.services.stop("stylizer-quality")
        pipeline.services.start("stylizer-quality", HOLD_EVERYTHING)
        pipeline.services.wait_ready(["stylizer-quality"])
        held = submit(pipeline, range(DONE_BEFORE, DONE_BEFORE + HELD))
        deadline = time.monotonic() + 120
        while held_by(pipeline, "stylizer-quality") < HELD:
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


def test_tagger_killed_while_handling_records_loses_nothing(deployment) -> None:  # type: ignore[no-untyped-def]
    """Per-record class: the tagger fetched the uploads and hangs reading their originals."""
    pipeline = start_pipeline(deployment, overrides={"tagger": QUICK_EXPIRY})
    try:
        pipeline.services.stop("tagger")
        held = submit(pipeline, range(20, 20 + HELD))
        with s3_frozen(deployment.infra):
            pipeline.services.start("tagger")  # Not ready while S3 is down; it consumes all the same.
            wait_held(pipeline, "tagger", "tagger", topics.UPLOADED, HELD)
            assert pipeline.services.stop("tagger", kill=True) == -9
        pipeline.services.start("tagger")
        assert_exported_once(pipeline, held)
    finally:
        pipeline.services.stop_all()


def test_uploader_killed_while_handling_intake_events_loses_nothing(deployment) -> None:  # type: ignore[no-untyped-def]
    """Intake class: the uploader fetched other systems' upload events and hangs checking their objects."""
    pipeline = start_pipeline(deployment, overrides={"uploader": QUICK_EXPIRY})
    settings = deployment.settings()
    try:
        asset_ids = [f"intake-held-{index}" for index in range(HELD)]
        for index, asset_id in enumerate(asset_ids):
            key = f"partner/{asset_id}.jpg"
            pipeline.store_for_partner(key, jpeg_bytes(seed=40 + index))
        with s3_frozen(deployment.infra):
            for asset_id in asset_ids:
                pipeline.intake(asset_id, f"partner/{asset_id}.jpg", brand="lumen")
            wait_held(pipeline, "uploader", "uploader", topics.INTAKE, HELD)
            assert pipeline.services.stop("uploader", kill=True) == -9
        pipeline.services.start("uploader")
        pipeline.services.wait_ready(["uploader"])
        assert_exported_once(pipeline, asset_ids)
        uploaded = asyncio.run(
            read_topic(
                settings.kafka_bootstrap, settings.topics.name(topics.UPLOADED), until=lambda found: False, timeout_s=3
            )
        )
        ids = [events.AssetUploaded.FromString(record.value).asset.asset_id for record in uploaded]
        assert sorted(asset_id for asset_id in ids if asset_id in asset_ids) == sorted(asset_ids)
    finally:
        pipeline.services.stop_all()
