"""Object-store drop trigger: an object put into the inbox bucket plus MinIO's notification ends exported."""

import asyncio

import pytest

from atelier_devtools.local.notifications import minio_notification
from atelier_shared import topics
from atelier_shared.assets import asset_id_for_object
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline
from tests.kafka import produce

pytestmark = pytest.mark.e2e


def drop(
    pipeline: Pipeline, key: str, data: bytes, content_type: str = "image/jpeg", metadata: dict[str, str] | None = None
) -> str:
    """Put an object into the inbox through the S3 API and publish MinIO's notification; its asset id."""
    settings = pipeline.deployment.settings()
    bucket = settings.bucket_inbox
    asyncio.run(pipeline.store.put(bucket, key, data, content_type, metadata=metadata))
    stored = asyncio.run(pipeline.store.stat(bucket, key))
    assert stored is not None
    record_key, value = minio_notification(bucket, key, stored.size, stored.etag, content_type, metadata)
    asyncio.run(produce(settings.kafka_bootstrap, settings.topics.name(topics.INBOX), record_key, value))
    return asset_id_for_object(bucket, key, stored.etag)


def test_dropped_object_is_exported(pipeline: Pipeline) -> None:
    by_prefix = drop(pipeline, "acme/preview/summer campaign/hero shot.jpg", jpeg_bytes(400, 300, seed=1))
    by_metadata = drop(pipeline, "incoming/banner.jpg", jpeg_bytes(300, 400, seed=2), metadata={"brand": "lumen"})

    done = pipeline.wait_final([by_prefix, by_metadata])

    first, second = done[by_prefix], done[by_metadata]
    assert first["stage"] == "exported", first
    assert first["source"] == "bucket_drop"
    assert first["source_uri"].endswith("acme/preview/summer campaign/hero shot.jpg")
    assert (first["brand"], first["tier"]) == ("acme", "preview")
    assert first["route"]["model_tier"] == "fast"
    assert [r["profile"] for r in first["renditions"]] == ["preview"]  # A preview exports only its preview.
    assert first["renditions"][0]["object"]["content_type"] == "image/webp"
    assert second["stage"] == "exported", second
    assert (second["brand"], second["tier"]) == ("lumen", "production")
    assert {r["profile"] for r in second["renditions"]} == {"web", "thumbnail", "print"}
    assert second["renditions"][0]["object"]["content_type"] == "image/avif"
