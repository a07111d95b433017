"""The object store (S3 protocol, MinIO in production), with errors mapped to retry policy."""

import asyncio
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, REPLACE, CopySource, Filter
from minio.credentials.providers import IamAwsProvider, Provider, StaticProvider
from minio.error import S3Error, ServerError
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from opentelemetry import trace

from atelier_shared.errors import ObjectMissing, PermanentError, StoreUnavailable
from atelier_shared.settings import AtelierSettings
from atelier_shared.tracing import tracer

T = TypeVar("T")

_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}
_EXPIRY_RULE = "atelier-expiry"


@dataclass(frozen=True)
class StoredObject:
    """What the store says about an object."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]
    # When it was written (the store's Last-Modified): lifecycle expiry counts from it.
    modified: datetime | None = None


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes: the content hash events and caches use."""
    return hashlib.sha256(data).hexdigest()


def credentials(settings: AtelierSettings) -> Provider:
    """The S3 credentials' provider: the configured keys, or the environment's identity (s3_credentials)."""
    if settings.s3_credentials == "iam":
        return IamAwsProvider(custom_endpoint=settings.s3_sts_endpoint or None)
    return StaticProvider(settings.s3_access_key, settings.s3_secret_key.get_secret_value())


def _client(endpoint: str, settings: AtelierSettings, provider: Provider) -> Minio:
    url = urlparse(endpoint)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        maxsize=16,
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], allowed_methods=None),
    )
    return Minio(
        url.netloc,
        credentials=provider,
        secure=url.scheme == "https",
        region=settings.s3_region,
        http_client=http,
    )


class ObjectStore:
    """Async facade over the MinIO client; blocking calls run in worker threads."""

    def __init__(self, settings: AtelierSettings) -> None:
        provider = credentials(settings)  # One for both clients: temporary credentials are fetched once.
        self._client = _client(settings.s3_endpoint, settings, provider)
        self._public = _client(settings.s3_public_endpoint or settings.s3_endpoint, settings, provider)

    async def _call(self, operation: str, bucket: str, key: str, call: Callable[[], T]) -> T:
        with tracer().start_as_current_span(
            f"s3 {operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={"aws.s3.bucket": bucket, "aws.s3.key": key, "rpc.method": operation},
        ):
            try:
                return await asyncio.to_thread(call)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    raise ObjectMissing(f"s3://{bucket}/{key} does not exist ({exc.code})") from exc
                raise PermanentError(f"{operation} s3://{bucket}/{key} failed: {exc.code}: {exc.message}") from exc
            except (ServerError, urllib3.exceptions.HTTPError, OSError) as exc:
                raise StoreUnavailable(f"{operation} s3://{bucket}/{key}: store unavailable: {exc}") from exc

    async def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Write an object (atomic: readers see the old or the new one, never a part)."""
        await self._call(
            "PutObject",
            bucket,
            key,
            lambda: self._client.put_object(
                bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=metadata,  # type: ignore[arg-type]
            ),
        )

    async def get(self, bucket: str, key: str) -> bytes:
        """Read a whole object; ObjectMissing when there is none."""

        def read() -> bytes:
            response = self._client.get_object(bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        data = await self._call("GetObject", bucket, key, read)
        trace.get_current_span().set_attribute("aws.s3.size", len(data))
        return data

    async def get_range(self, bucket: str, key: str, length: int) -> bytes:
        """Read the first `length` bytes of an object (all of it when it is shorter; not an empty one)."""

        def read() -> bytes:
            response = self._client.get_object(bucket, key, offset=0, length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await self._call("GetObject", bucket, key, read)

    async def stat(self, bucket: str, key: str) -> StoredObject | None:
        """What the store knows of an object, or None when it does not exist."""

        def stat() -> StoredObject:
            info = self._client.stat_object(bucket, key)
            metadata = {
                name.lower().removeprefix("x-amz-meta-"): str(value)
                for name, value in (info.metadata or {}).items()
                if name.lower().startswith("x-amz-meta-")
            }
            return StoredObject(
                bucket=bucket,
                key=key,
                size=info.size or 0,
                etag=(info.etag or "").strip('"'),
                content_type=info.content_type or "",
                metadata=metadata,
                modified=info.last_modified,
            )

        try:
            return await self._call("HeadObject", bucket, key, stat)
        except ObjectMissing:
            return None

    async def renew(self, stored: StoredObject) -> None:
        """Write an object again onto itself (a copy inside the store: same bytes, type and metadata),
        so that lifecycle expiry counts from now."""
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": stored.content_type, **stored.metadata}
        source = CopySource(stored.bucket, stored.key)

        def renew() -> None:
            self._client.copy_object(stored.bucket, stored.key, source, metadata=headers, metadata_directive=REPLACE)

        await self._call("CopyObject", stored.bucket, stored.key, renew)

    async def delete(self, bucket: str, key: str) -> None:
        """Remove an object (no error when it does not exist)."""
        await self._call("DeleteObject", bucket, key, lambda: self._client.remove_object(bucket, key))

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys under a prefix, recursively."""
        return await self._call(
            "ListObjects",
            bucket,
            prefix,
            lambda: [
                item.object_name
                for item in self._client.list_objects(bucket, prefix=prefix, recursive=True)
                if item.object_name is not None
            ],
        )

    async def ensure_buckets(self, buckets: list[str]) -> None:
        """Create the buckets that do not exist yet."""

        def ensure() -> None:
            for bucket in buckets:
                if not self._client.bucket_exists(bucket):
                    self._client.make_bucket(bucket)

        await self._call("CreateBucket", ",".join(buckets), "", ensure)

    async def set_expiry(self, bucket: str, days: int) -> None:
        """Have the store expire the bucket's objects `days` after they were written (0: never); the
        bucket's other lifecycle rules (an operator's) are kept."""

        def configure() -> None:
            config = self._client.get_bucket_lifecycle(bucket)
            rules = [rule for rule in (config.rules if config else []) if rule.rule_id != _EXPIRY_RULE]
            if days:
                expiry = Expiration(days=days)
                rules.append(Rule(ENABLED, rule_filter=Filter(prefix=""), rule_id=_EXPIRY_RULE, expiration=expiry))
            if rules:
                self._client.set_bucket_lifecycle(bucket, LifecycleConfig(rules))
            elif config:
                self._client.delete_bucket_lifecycle(bucket)

        await self._call("PutBucketLifecycleConfiguration", bucket, "", configure)

    async def ping(self) -> bool:
        """Whether the store answers (for readiness)."""
        try:
            await asyncio.to_thread(self._client.list_buckets)
            return True
        except Exception:
            return False

    def presigned_url(self, bucket: str, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A time-limited GET URL for clients, on the public endpoint (no network call)."""
        return self._public.presigned_get_object(bucket, key, expires=expires)
