"""Uploads that arrive on Kafka: objects dropped into the inbox bucket, and upload events from other systems.

Both are validated like an HTTP upload (atelier_uploader.ingest) and become AssetUploaded events.
"""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from atelier_shared import AtelierError, ObjectMissing, ObjectStore, StoredObject, assets, events
from atelier_uploader.ingest import Ingestor, Submission
from atelier_uploader.notifications import DroppedObject, drop_request, parse_notification


@contextmanager
def _about(asset_id: str, brand: str) -> Iterator[None]:
    """Stamp the asset's identity on errors, so its dead-letter record and status name it."""
    try:
        yield
    except AtelierError as exc:
        exc.asset_id = exc.asset_id or asset_id
        exc.brand = exc.brand or brand
        raise


class Intake:
    """Turns stored objects announced on Kafka into validated uploads."""

    def __init__(self, store: ObjectStore, ingestor: Ingestor) -> None:
        self._store = store
        self._ingestor = ingestor

    async def drop(self, notification: dict[str, Any]) -> list[events.AssetUploaded]:
        """A bucket notification in (MinIO, Ceph RGW or AWS S3); an AssetUploaded for each object it created."""
        return [await self._drop_one(item) for item in parse_notification(notification)]

    async def _drop_one(self, item: DroppedObject) -> events.AssetUploaded:
        asset_id = assets.asset_id_for_object(item.bucket, item.key, item.etag)
        with _about(asset_id, item.metadata.get("brand", "")):
            stored = await self._store.stat(item.bucket, item.key)
            if stored is not None and not item.metadata:  # AWS S3's records carry no user metadata.
                item = dataclasses.replace(item, metadata=stored.metadata)
            request = drop_request(item)
            submission = Submission(
                asset_id, request.brand, request.tier, request.style, events.SOURCE_BUCKET_DROP, item.uri
            )
            return await self._ingest(stored, submission)

    async def submitted(self, submitted: events.AssetSubmitted) -> events.AssetUploaded:
        """An AssetSubmitted from another system in, its AssetUploaded out."""
        uri = f"s3://{submitted.bucket}/{submitted.key}"
        stored = await self._store.stat(submitted.bucket, submitted.key)
        asset_id = submitted.asset_id or assets.asset_id_for_object(
            submitted.bucket, submitted.key, stored.etag if stored else ""
        )
        with _about(asset_id, submitted.brand):
            tier = submitted.tier or events.TIER_PRODUCTION
            source_uri = submitted.reference or uri
            submission = Submission(asset_id, submitted.brand, tier, submitted.style, events.SOURCE_EVENT, source_uri)
            return await self._ingest(stored, submission)

    async def _ingest(self, stored: StoredObject | None, submission: Submission) -> events.AssetUploaded:
        if stored is None:
            raise ObjectMissing(f"{submission.source_uri}: the object does not exist; store it before announcing it")
        self._ingestor.check(submission.brand, submission.tier, submission.style)
        self._ingestor.check_size(stored.size)
        data = await self._store.get(stored.bucket, stored.key)
        return await self._ingestor.ingest(data, submission)
