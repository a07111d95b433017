"""Object-store drop trigger: an object put into the inbox bucket plus its notification (MinIO's, or AWS
S3's record) ends exported."""

import asyncio
import json

import pytest

from atelier_devtools.local.notifications import minio_notification
from atelier_shared import topics
from atelier_shared.assets import asset_id_for_object
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline
from tests.kafka import produce
from tests.notifications import aws_s3_record

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


def test_an_aws_s3_record_without_metadata_takes_the_brand_from_the_object(pipeline: Pipeline) -> None:
    """AWS S3's records name no user metadata and no `s3:` prefix: the object's own metadata (read
    from the store) gives the brand, and the key arrives URL-encoded."""
    settings = pipeline.deployment.settings()
    bucket, key = settings.bucket_inbox, "incoming/aws drop+1.jpg"
    asyncio.run(
        pipeline.store.put(bucket, key, jpeg_bytes(300, 200, seed=3), "image/jpeg", metadata={"brand": "lumen"})
    )
    stored = asyncio.run(pipeline.store.stat(bucket, key))
    assert stored is not None
    record = aws_s3_record(key, bucket=bucket, etag=stored.etag)
    value = json.dumps({"Records": [record]}).encode()
    asyncio.run(
        produce(settings.kafka_bootstrap, settings.topics.name(topics.INBOX), f"{bucket}/{key}".encode(), value)
    )

    asset_id = asset_id_for_object(bucket, key, stored.etag)
    status = pipeline.wait_final([asset_id])[asset_id]
    assert status["stage"] == "exported", status
    assert (status["brand"], status["source_uri"]) == ("lumen", f"s3://{bucket}/{key}")
