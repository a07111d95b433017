"""Tagger wiring: read the original, decode at working size, tag, publish."""

import asyncio

from atelier_shared import (
    STAGE_SECONDS,
    BatchPolicy,
    ConsumerConfig,
    Delivery,
    ObjectStore,
    Outgoing,
    PipelineService,
    events,
    per_record,
    topics,
    tracer,
)
from atelier_shared.images import decode
from atelier_tagger import handlers
from atelier_tagger.settings import TaggerSettings
from atelier_tagger.tags import WORKING_SIDE


def build(settings: TaggerSettings) -> PipelineService:
    """The tagger service."""
    store = ObjectStore(settings)
    names = settings.topics
    tagged_topic = names.name(topics.TAGGED)

    async def handle(delivery: Delivery) -> list[Outgoing]:
        uploaded: events.AssetUploaded = delivery.event
        original = uploaded.asset.original
        data = await store.get(original.bucket, original.key)
        with tracer().start_as_current_span("decode"), STAGE_SECONDS.labels("tagger", "decode").time():
            image = await asyncio.to_thread(decode, data, settings.limits, WORKING_SIDE)
        with tracer().start_as_current_span("tag") as span, STAGE_SECONDS.labels("tagger", "tag").time():
            tagged = await asyncio.to_thread(handlers.tagged_event, uploaded, image)
            span.set_attributes(handlers.span_attributes(tagged.tags))
        return [Outgoing(tagged_topic, uploaded.asset.asset_id, tagged)]

    config = ConsumerConfig(
        group_id=names.group("tagger"),
        topics={names.name(topics.UPLOADED): 0},
        batch=BatchPolicy(max_items=2 * settings.tagger_concurrency),
    )
    return PipelineService(
        "tagger", settings, config, per_record(handle, concurrency=settings.tagger_concurrency), store
    )
