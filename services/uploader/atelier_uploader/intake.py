"""Uploads that arrive on Kafka: objects dropped into the inbox bucket, and upload events from other systems.

Both are validated like an HTTP upload (atelier_uploader.ingest) and become AssetUploaded events.
"""

import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from atelier_shared import (
    AtelierError,
    InvalidEvent,
    ObjectMissing,
    ObjectStore,
    Publisher,
    PublishRefused,
    StoredObject,
    assets,
    events,
    get_logger,
)
from atelier_uploader.ingest import Ingestor, Submission
from atelier_uploader.notifications import DroppedObject, drop_request, dropped_brand, parse_notification

log = get_logger(__name__)


@contextmanager
def _about(asset_id: str, brand: str) -> Iterator[None]:
    """Stamp the asset's identity on errors, so its dead-letter record and status name it."""
    try:
        yield
    except AtelierError as exc:
        exc.asset_id = exc.asset_id or asset_id
        exc.brand = exc.brand or brand
        raise


# An id another system chooses: something a URL path and an object key can hold as one segment.
_ASSET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


class Intake:
    """Turns stored objects announced on Kafka into validated uploads."""

    def __init__(
        self,
        store: ObjectStore,
        ingestor: Ingestor,
        brand_of: Callable[[str], Awaitable[str | None]],
        uploads: Publisher,
        inbox: str,
        own_buckets: frozenset[str],
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._brand_of = brand_of
        self._uploads = uploads
        self._inbox = inbox
        self._own_buckets = own_buckets

    async def drop(self, notification: dict[str, Any]) -> list[events.AssetUploaded]:
        """A bucket notification in (MinIO, Ceph RGW or AWS S3); an AssetUploaded for each object it created.

        MinIO, S3 and Ceph announce one object per notification, but one may announce several (a
        bridge that batches). When some of them are refused for good, the others are published first,
        so that none waits on a replay that may never come; then the notification is dead-lettered
        with the first refusal (a replay ingests all of its objects again, under the same ids).
        """
        uploaded, refused = [], []
        for item in parse_notification(notification):
            try:
                uploaded.append(await self._drop_one(item))
            except AtelierError as exc:
                if exc.retriable:
                    raise  # The whole notification is tried again.
                log.warning("dropped object refused", asset_id=exc.asset_id, error_type=exc.code, error=str(exc))
                refused.append(exc)
        if refused:
            try:
                for event in uploaded:
                    await self._uploads.publish(event)
            except PublishRefused as exc:  # The refusal that names an object is the one to dead-letter.
                log.error("good objects of a partly refused notification not published", error=str(exc)[:500])
            raise refused[0]
        return uploaded

    async def _drop_one(self, item: DroppedObject) -> events.AssetUploaded:
        asset_id = assets.asset_id_for_object(item.bucket, item.key, item.etag)
        # Errors name the brand the object names, so that its status (failed, and why) is the brand's to see.
        with _about(asset_id, dropped_brand(item)):
            if item.bucket != self._inbox and item.bucket in self._own_buckets:
                raise InvalidEvent(f"{item.uri}: drops are announced for the inbox, not Atelier's other buckets")
            stored = await self._store.stat(item.bucket, item.key)
        if stored is not None and not item.metadata:  # AWS S3's records carry no user metadata.
            item = dataclasses.replace(item, metadata=stored.metadata)
        with _about(asset_id, dropped_brand(item)):
            request = drop_request(item)
            submission = Submission(
                asset_id, request.brand, request.tier, request.style, events.SOURCE_BUCKET_DROP, item.uri
            )
            return await self._ingest(stored, submission)

    async def submitted(self, submitted: events.AssetSubmitted) -> events.AssetUploaded:
        """An AssetSubmitted from another system in, its AssetUploaded out.

        The object must be in the sending system's own bucket: one of Atelier's is refused. Originals,
        renditions and keys are any brand's; an object in the inbox is a drop already (processed as
        one, for the brand its key names), so an event naming it would process another brand's file,
        or the same file twice.
        """
        uri = f"s3://{submitted.bucket}/{submitted.key}"
        with _about(submitted.asset_id, submitted.brand):
            if not submitted.bucket or not submitted.key:
                raise InvalidEvent(f"{uri}: an intake event names the stored object's bucket and key")
            if submitted.bucket in self._own_buckets:
                raise InvalidEvent(f"{uri}: is in one of Atelier's buckets; name an object in your own bucket")
        stored = await self._store.stat(submitted.bucket, submitted.key)
        asset_id = submitted.asset_id or assets.asset_id_for_object(
            submitted.bucket, submitted.key, stored.etag if stored else ""
        )
        with _about(asset_id, submitted.brand):
            if submitted.asset_id:
                await self._check_id(submitted.asset_id, submitted.brand)
            tier = submitted.tier or events.TIER_PRODUCTION
            source_uri = submitted.reference or uri
            submission = Submission(asset_id, submitted.brand, tier, submitted.style, events.SOURCE_EVENT, source_uri)
            return await self._ingest(stored, submission)

    async def _check_id(self, asset_id: str, brand: str) -> None:
        """Refuse an id that is malformed, or that another brand's asset already has (ids are global)."""
        if not _ASSET_ID.fullmatch(asset_id):
            message = "asset_id: 1 to 128 letters, digits and . _ : @ - (starting with a letter or digit)"
            raise InvalidEvent(f"{message}, not {asset_id[:140]!r}")
        owner = await self._brand_of(asset_id)
        if owner is not None and owner != brand:
            raise InvalidEvent(
                f"asset id {asset_id!r} belongs to another brand's asset: use ids unique across brands (a UUID)"
            )

    async def _ingest(self, stored: StoredObject | None, submission: Submission) -> events.AssetUploaded:
        if stored is None:
            raise ObjectMissing(f"{submission.source_uri}: the object does not exist; store it before announcing it")
        self._ingestor.check(submission.brand, submission.tier, submission.style)
        self._ingestor.check_size(stored.size)
        # At most one byte over the limit, whatever the object holds by now (it may be replaced after
        # `stat`): validation's own byte check refuses such an object.
        limit = self._ingestor.limits.max_bytes
        data = await self._store.get_range(stored.bucket, stored.key, limit + 1) if stored.size else b""
        return await self._ingestor.ingest(data, submission)
