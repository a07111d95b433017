"""The exporter's handler: a stylized asset in, its renditions written, the brand notified, the exported event out."""

import asyncio

from PIL import Image
from prometheus_client import Histogram

from atelier_exporter.renditions import CONTENT_TYPES, profiles_for, render, rendition_key, target_size
from atelier_shared import STAGE_SECONDS, ObjectStore, events, sha256_hex, tracer
from atelier_shared.images import ImageLimits, decode
from atelier_shared.tracing import exemplar

ARTIST_WAIT_SECONDS = Histogram(
    "atelier_artist_wait_seconds",
    "The artist's wait: upload to exported renditions, by tier and whether served degraded or re-rendered.",
    ["brand", "tier", "kind"],
    # Every brand's latency target should be a boundary, so "over the target" is read exactly (tested
    # for the shipped brands); the alert's p95 is interpolated within a bucket.
    buckets=(0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600),
)
PIPELINE_STAGE_SECONDS = Histogram(
    "atelier_pipeline_stage_seconds",
    "Time between pipeline stages from each asset's timeline (includes queueing).",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def exported_event(stylized: events.AssetStylized, renditions: list[events.Rendition]) -> events.AssetExported:
    """The exported event, its timeline completed."""
    exported = events.AssetExported(
        asset=stylized.asset, route=stylized.route, model=stylized.model, renditions=renditions
    )
    exported.asset.timeline.exported_at.CopyFrom(events.now_timestamp())
    return exported


class Exporter:
    """Writes an asset's renditions, one per export profile of its route."""

    def __init__(self, store: ObjectStore, bucket: str, limits: ImageLimits) -> None:
        self._store = store
        self._bucket = bucket
        self._limits = limits

    async def export(self, stylized: events.AssetStylized) -> events.AssetExported:
        """AssetStylized in, renditions written, AssetExported out."""
        asset = stylized.asset
        data = await self._store.get(stylized.stylized.bucket, stylized.stylized.key)
        with tracer().start_as_current_span("decode"):
            image = await asyncio.to_thread(decode, data, self._limits)
        full = (asset.original.width or image.width, asset.original.height or image.height)
        renditions = await asyncio.gather(
            *(self._rendition(image, profile, asset, full) for profile in profiles_for(stylized.route))
        )
        exported = exported_event(stylized, list(renditions))
        observe(exported)
        return exported

    async def _rendition(
        self, image: Image.Image, profile: events.ExportProfile, asset: events.AssetHeader, full: tuple[int, int]
    ) -> events.Rendition:
        with tracer().start_as_current_span("render", attributes={"atelier.profile": profile.name}):
            with STAGE_SECONDS.labels("exporter", "render").time():
                data = await asyncio.to_thread(render, image, profile, full, asset.tier == events.TIER_PREVIEW)
            key = rendition_key(asset.brand, asset.asset_id, profile)
            content_type = CONTENT_TYPES[profile.format]
            await self._store.put(
                self._bucket, key, data, content_type, metadata={"asset-id": asset.asset_id, "profile": profile.name}
            )
        width, height = target_size(full, profile)
        return events.Rendition(
            profile=profile.name,
            object=events.ObjectRef(
                bucket=self._bucket,
                key=key,
                sha256=sha256_hex(data),
                size=len(data),
                width=width,
                height=height,
                content_type=content_type,
            ),
        )


def observe(exported: events.AssetExported) -> None:
    """The artist's wait and the time between stages, from the asset's timeline."""
    durations = events.stage_durations_ms(events.timeline_ms(exported.asset.timeline))
    for stage, milliseconds in durations.items():
        PIPELINE_STAGE_SECONDS.labels(stage).observe(milliseconds / 1000)
    if "total" in durations:
        route = exported.route
        kind = "rerender" if route.rerender else ("degraded" if route.degraded else "normal")
        tier = events.tier_name(exported.asset.tier)
        # The trace as an exemplar: a slow bucket on a dashboard links to an asset's trace.
        ARTIST_WAIT_SECONDS.labels(exported.asset.brand, tier, kind).observe(durations["total"] / 1000, exemplar())
