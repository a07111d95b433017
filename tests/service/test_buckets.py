"""Provisioning's buckets on the S3 protocol (moto's server): the stylized results expire."""

import pytest
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

from atelier_shared import ObjectStore
from atelier_shared.provision import create_buckets
from tests.conftest import Deployment

pytestmark = pytest.mark.service


async def test_stylized_results_expire_as_configured_and_nothing_else_does(deployment: Deployment) -> None:
    settings = deployment.settings()  # Provisioned by the fixture, with the default retention.
    store = ObjectStore(settings)
    assert await store.expiry_days(settings.bucket_stylized) == 30
    for bucket in set(settings.buckets()) - {settings.bucket_stylized}:
        assert await store.expiry_days(bucket) is None, bucket
    await create_buckets(deployment.settings(stylized_retention_days=7))  # Provisioning again: idempotent.
    assert await store.expiry_days(settings.bucket_stylized) == 7
    await create_buckets(deployment.settings(stylized_retention_days=0))
    assert await store.expiry_days(settings.bucket_stylized) is None


async def test_an_operators_own_lifecycle_rules_are_kept(deployment: Deployment) -> None:
    settings = deployment.settings()
    client = Minio(
        settings.s3_endpoint.split("//")[-1],
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        secure=False,
    )
    theirs = Rule(
        ENABLED,
        rule_filter=Filter(prefix="tmp/"),
        rule_id="operator-uploads",
        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(days_after_initiation=2),
    )
    client.set_bucket_lifecycle(settings.bucket_stylized, LifecycleConfig([theirs]))
    await create_buckets(deployment.settings(stylized_retention_days=14))
    assert await ObjectStore(settings).expiry_days(settings.bucket_stylized) == 14
    await create_buckets(deployment.settings(stylized_retention_days=0))
    for _ in range(2):  # Setting and removing ours, twice, leaves theirs as it was.
        config = client.get_bucket_lifecycle(settings.bucket_stylized)
        assert config is not None and [rule.rule_id for rule in config.rules] == ["operator-uploads"]
        await create_buckets(deployment.settings(stylized_retention_days=0))
