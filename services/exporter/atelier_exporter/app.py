"""Exporter wiring: read the stylized image, write each rendition, notify, publish."""

import asyncio
import os

import aiohttp
from google.protobuf.json_format import MessageToDict
from PIL import Image
from prometheus_client import Histogram

from atelier_exporter import handlers, webhook
from atelier_exporter.renditions import CONTENT_TYPES, render, rendition_key, target_size
from atelier_exporter.settings import ExporterSettings
from atelier_shared import (
    STAGE_SECONDS,
    BatchPolicy,
    BrandBook,
    ConsumerConfig,
    Delivery,
    ObjectStore,
    Outgoing,
    PipelineService,
    events,
    get_logger,
    per_record,
    sha256_hex,
    topics,
    tracer,
)
from atelier_shared.events import TIER_NAMES
from atelier_shared.images import decode

log = get_logger(__name__)

ARTIST_WAIT_SECONDS = Histogram(
    "atelier_artist_wait_seconds",
    "The artist's wait: upload to exported renditions, by tier and whether served degraded or re-rendered.",
    ["brand", "tier", "kind"],
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600),
)
PIPELINE_STAGE_SECONDS = Histogram(
    "atelier_pipeline_stage_seconds",
    "Time between pipeline stages from each asset's timeline (includes queueing).",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


class Exporter:
    """Writes renditions and tells the brand's webhook."""

    def __init__(self, settings: ExporterSettings, store: ObjectStore, brands: BrandBook) -> None:
        self._settings = settings
        self._store = store
        self._brands = brands
        self._exported_topic = settings.topics.name(topics.EXPORTED)
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, delivery: Delivery) -> list[Outgoing]:
        """One stylized asset in, its renditions written and the exported event out."""
        stylized: events.AssetStylized = delivery.event
        asset = stylized.asset
        guidelines = self._brands.get(asset.brand)
        data = await self._store.get(stylized.stylized.bucket, stylized.stylized.key)
        with tracer().start_as_current_span("decode"):
            image = await asyncio.to_thread(decode, data, self._settings.limits)
        full = (asset.original.width or image.width, asset.original.height or image.height)
        renditions = await asyncio.gather(
            *(self._rendition(image, profile, asset, full) for profile in handlers.profiles_for(stylized.route))
        )
        exported = handlers.exported_event(stylized, list(renditions))
        if guidelines.webhook is not None:
            exported.webhook.CopyFrom(
                await self._notify(str(guidelines.webhook.url), guidelines.webhook.secret_env, exported)
            )
        self._observe(exported)
        return [Outgoing(self._exported_topic, asset.asset_id, exported)]

    async def _rendition(
        self, image: Image.Image, profile: events.ExportProfile, asset: events.AssetHeader, full: tuple[int, int]
    ) -> events.Rendition:
        with tracer().start_as_current_span("render", attributes={"atelier.profile": profile.name}):
            with STAGE_SECONDS.labels("exporter", "render").time():
                data = await asyncio.to_thread(render, image, profile, full)
            key = rendition_key(asset.brand, asset.asset_id, profile)
            content_type = CONTENT_TYPES[profile.format]
            await self._store.put(
                self._settings.bucket_renditions,
                key,
                data,
                content_type,
                metadata={"asset-id": asset.asset_id, "profile": profile.name},
            )
        width, height = target_size(full, profile.max_side)
        return events.Rendition(
            profile=profile.name,
            object=events.ObjectRef(
                bucket=self._settings.bucket_renditions,
                key=key,
                sha256=sha256_hex(data),
                size=len(data),
                width=width,
                height=height,
                content_type=content_type,
            ),
        )

    async def _notify(self, url: str, secret_env: str, exported: events.AssetExported) -> events.WebhookDelivery:
        secret = os.environ.get(secret_env, "")
        if not secret:
            return events.WebhookDelivery(url=str(url), error=f"webhook secret variable {secret_env} is not set")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        kind = "asset.upgraded" if exported.route.rerender else "asset.exported"
        with tracer().start_as_current_span("webhook", attributes={"url.full": str(url)}):
            result = await webhook.deliver(
                self._session,
                str(url),
                secret.encode(),
                kind,
                handlers.delivery_id(exported),
                MessageToDict(exported, preserving_proto_field_name=True),
                attempts=self._settings.webhook_attempts,
                timeout_s=self._settings.webhook_timeout_s,
            )
        if result.error:
            log.warning("webhook delivery failed", url=str(url), error=result.error, attempts=result.attempts)
        return result

    def _observe(self, exported: events.AssetExported) -> None:
        durations = handlers.stage_durations(exported.asset.timeline)
        for stage, seconds in durations.items():
            PIPELINE_STAGE_SECONDS.labels(stage).observe(seconds)
        if "total" in durations:
            route = exported.route
            kind = "rerender" if route.rerender else ("degraded" if route.degraded else "normal")
            ARTIST_WAIT_SECONDS.labels(
                exported.asset.brand, TIER_NAMES.get(exported.asset.tier, "unspecified"), kind
            ).observe(durations["total"])

    async def close(self) -> None:
        """Close the webhook HTTP session."""
        if self._session is not None:
            await self._session.close()


class ExporterService(PipelineService):
    """The pipeline service plus the webhook session's lifecycle."""

    def __init__(self, settings: ExporterSettings) -> None:
        store = ObjectStore(settings)
        self.exporter = Exporter(settings, store, BrandBook.load(settings.brands_dir))
        names = settings.topics
        config = ConsumerConfig(
            group_id=names.group("exporter"),
            topics={names.name(topics.STYLIZED): 0},
            batch=BatchPolicy(max_items=2 * settings.exporter_concurrency),
        )
        super().__init__(
            "exporter", settings, config, per_record(self.exporter.handle, settings.exporter_concurrency), store
        )

    async def stop(self) -> None:
        await super().stop()
        await self.exporter.close()
