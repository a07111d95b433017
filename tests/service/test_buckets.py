"""Provisioning's buckets on the S3 protocol (moto's server): the stylized results expire, and a cached
one still in use is renewed before it does."""

import asyncio
from datetime import timedelta

import pytest
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

from atelier_shared import AtelierSettings, ObjectStore
from atelier_shared.provision import create_buckets
from atelier_stylizer.stylizer import renew_aging
from tests.conftest import Deployment

pytestmark = pytest.mark.service


def client(settings: AtelierSettings) -> Minio:
    secret = settings.s3_secret_key.get_secret_value()
    return Minio(settings.s3_endpoint.split("//")[-1], settings.s3_access_key, secret, secure=False)


def rules(store: Minio, bucket: str) -> dict[str, int | None]:
    """The bucket's lifecycle rules: each one's expiry in days (None: the rule expires nothing)."""
    config = store.get_bucket_lifecycle(bucket)
    return {
        rule.rule_id: rule.expiration.days if rule.expiration else None for rule in (config.rules if config else [])
    }


async def test_stylized_results_expire_as_configured_and_nothing_else_does(deployment: Deployment) -> None:
    settings = deployment.settings()  # Provisioned by the fixture, with the default retention.
    store = client(settings)
    assert rules(store, settings.bucket_stylized) == {"atelier-expiry": 30}
    for bucket in set(settings.buckets()) - {settings.bucket_stylized}:
        assert rules(store, bucket) == {}, bucket
    await create_buckets(deployment.settings(stylized_retention_days=7))  # Provisioning again: idempotent.
    assert rules(store, settings.bucket_stylized) == {"atelier-expiry": 7}
    await create_buckets(deployment.settings(stylized_retention_days=0))
    assert rules(store, settings.bucket_stylized) == {}


async def test_an_operators_own_lifecycle_rules_are_kept(deployment: Deployment) -> None:
    settings = deployment.settings()
    store = client(settings)
    theirs = Rule(
        ENABLED,
        rule_filter=Filter(prefix="tmp/"),
        rule_id="operator-uploads",
        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(days_after_initiation=2),
    )
    store.set_bucket_lifecycle(settings.bucket_stylized, LifecycleConfig([theirs]))
    await create_buckets(deployment.settings(stylized_retention_days=14))
    assert rules(store, settings.bucket_stylized) == {"operator-uploads": None, "atelier-expiry": 14}
    await create_buckets(deployment.settings(stylized_retention_days=0))
    assert rules(store, settings.bucket_stylized) == {"operator-uploads": None}
    await create_buckets(deployment.settings(stylized_retention_days=0))  # Nothing of ours to remove.
    assert rules(store, settings.bucket_stylized) == {"operator-uploads": None}


async def test_a_cached_result_past_half_its_retention_is_renewed_in_place(deployment: Deployment) -> None:
    """Bug (with expiry): a cache hit on a result about to expire pointed the exporter at an object the
    store could remove before the exporter read it, and the asset was dead-lettered as missing."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    bucket, metadata = settings.bucket_stylized, {"sha256": "ab" * 32, "width": "64", "height": "48"}
    await store.put(bucket, "aging.tif", b"II*\x00 pixels", "image/tiff", metadata=metadata)
    await store.put(bucket, "fresh.tif", b"II*\x00 pixels", "image/tiff", metadata=metadata)
    aging, fresh = [await store.stat(bucket, key) for key in ("aging.tif", "fresh.tif")]
    assert aging is not None and fresh is not None and aging.modified is not None
    await asyncio.sleep(1.1)  # Last-Modified has a resolution of one second.
    await renew_aging(store, [aging], timedelta(0))  # Older than "half its retention".
    await renew_aging(store, [fresh], timedelta(days=15))  # Written just now: left as it is.
    await renew_aging(store, [fresh], None)  # Results that never expire: left as they are.
    renewed, untouched = [await store.stat(bucket, key) for key in ("aging.tif", "fresh.tif")]
    assert renewed is not None and renewed.modified is not None and renewed.modified > aging.modified
    assert (renewed.size, renewed.content_type, renewed.metadata) == (aging.size, "image/tiff", metadata)
    assert await store.get(bucket, "aging.tif") == b"II*\x00 pixels"
    assert untouched == fresh
