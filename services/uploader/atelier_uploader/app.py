"""Uploader wiring: HTTP API, bucket-drop and intake consumers, status view."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from aiohttp import web

from atelier_shared import (
    AtelierError,
    BatchPolicy,
    BrandBook,
    ConsumerConfig,
    ConsumerRuntime,
    Delivery,
    EventProducer,
    ObjectMissing,
    ObjectStore,
    OpsServer,
    Outgoing,
    StoredObject,
    assets,
    events,
    get_logger,
    per_record,
    topics,
)
from atelier_shared.service import crashed_by
from atelier_uploader import handlers
from atelier_uploader.api import Api
from atelier_uploader.ingest import Ingestor
from atelier_uploader.settings import UploaderSettings
from atelier_uploader.status import StatusView

log = get_logger(__name__)


class UploaderApp:
    """The uploader process."""

    def __init__(self, settings: UploaderSettings) -> None:
        self.settings = settings
        names = settings.topics
        self._uploaded_topic = names.name(topics.UPLOADED)
        self._inbox_topic = names.name(topics.INBOX)
        self.crashed = asyncio.Event()
        self.store = ObjectStore(settings)
        brands = BrandBook.load(settings.brands_dir)
        self.ingestor = Ingestor(self.store, brands, settings.limits, settings.bucket_originals)
        self.producer = EventProducer(settings.kafka_bootstrap, client_id="uploader")
        self.status = StatusView(settings)
        self.intake = ConsumerRuntime(
            "uploader",
            settings,
            ConsumerConfig(
                group_id=names.group("uploader"),
                topics={self._inbox_topic: 0, names.name(topics.INTAKE): 0},
                batch=BatchPolicy(max_items=2 * settings.intake_concurrency),
            ),
            per_record(self._handle_intake, concurrency=settings.intake_concurrency),
            self.producer,
            crashed_by(self.crashed),
        )
        api = Api(
            self.ingestor,
            self.producer,
            self.store,
            self.status,
            names,
            brands.names(),
            timedelta(seconds=settings.presign_expiry_s),
        )
        web_app = web.Application(client_max_size=settings.max_upload_bytes + 1024 * 1024)
        api.routes(web_app)
        self.ops = OpsServer(
            settings.api_host,
            settings.api_port,
            {"kafka": self._kafka_ready, "store": self.store.ping, "status_view": self._status_ready},
            app=web_app,
        )

    async def _kafka_ready(self) -> bool:
        return self.intake.ready

    async def _status_ready(self) -> bool:
        return self.status.ready

    async def start(self) -> None:
        """Start the producer, the status view and the intake consumers, then serve HTTP."""
        await self.producer.start()
        await self.status.start()
        await self.intake.start()
        await self.ops.start()
        log.info("started", service="uploader", api_port=self.ops.port)

    async def stop(self) -> None:
        """Stop serving, then consuming, then the view and the producer."""
        await self.ops.stop()
        await self.intake.stop()
        await self.status.stop()
        await self.producer.stop()

    async def _handle_intake(self, delivery: Delivery) -> list[Outgoing]:
        if delivery.record.topic == self._inbox_topic:
            return [await self._ingest_drop(item) for item in handlers.parse_notification(delivery.event)]
        return [await self._ingest_submitted(delivery.event)]

    async def _ingest_drop(self, item: handlers.DroppedObject) -> Outgoing:
        asset_id = assets.asset_id_for_object(item.bucket, item.key, item.etag)
        with _about(asset_id, item.metadata.get("brand", "")):
            request = handlers.drop_request(item)
            stored = await self.store.stat(item.bucket, item.key)
            return await self._ingest_object(
                stored, item.uri, asset_id, request.brand, request.tier, request.style, events.SOURCE_BUCKET_DROP
            )

    async def _ingest_submitted(self, submitted: events.AssetSubmitted) -> Outgoing:
        uri = f"s3://{submitted.bucket}/{submitted.key}"
        stored = await self.store.stat(submitted.bucket, submitted.key)
        asset_id = submitted.asset_id or assets.asset_id_for_object(
            submitted.bucket, submitted.key, stored.etag if stored else ""
        )
        with _about(asset_id, submitted.brand):
            return await self._ingest_object(
                stored,
                submitted.reference or uri,
                asset_id,
                submitted.brand,
                submitted.tier or events.TIER_PRODUCTION,
                submitted.style,
                events.SOURCE_EVENT,
            )

    async def _ingest_object(
        self,
        stored: StoredObject | None,
        source_uri: str,
        asset_id: str,
        brand: str,
        tier: events.Tier,
        style: str,
        source: events.Source,
    ) -> Outgoing:
        if stored is None:
            raise ObjectMissing(f"{source_uri}: the object does not exist; store it before announcing it")
        self.ingestor.check(brand, tier, style)
        self.ingestor.check_size(stored.size)
        data = await self.store.get(stored.bucket, stored.key)
        uploaded = await self.ingestor.ingest(
            data, asset_id=asset_id, brand=brand, tier=tier, style=style, source=source, source_uri=source_uri
        )
        return Outgoing(self._uploaded_topic, asset_id, uploaded)


@contextmanager
def _about(asset_id: str, brand: str) -> Iterator[None]:
    """Stamp the asset's identity on errors, so its dead-letter record and status name it."""
    try:
        yield
    except AtelierError as exc:
        exc.asset_id = exc.asset_id or asset_id
        exc.brand = exc.brand or brand
        raise
