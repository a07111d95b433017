"""The tagger: uploaded originals in, computer-vision tags out."""

import asyncio

from atelier_shared import STAGE_SECONDS, ObjectStore, Service, events, topics, tracer
from atelier_shared.images import ImageLimits, decode
from atelier_tagger.classifier import Classifier
from atelier_tagger.settings import TaggerSettings
from atelier_tagger.tags import WORKING_SIDE, compute_tags, span_attributes, tagged_event


class Tagger:
    """Reads an original, decodes it once at working size, measures it and classifies it."""

    def __init__(self, store: ObjectStore, limits: ImageLimits, classifier: Classifier) -> None:
        self._store = store
        self._limits = limits
        self._classifier = classifier

    async def tag(self, uploaded: events.AssetUploaded) -> events.AssetTagged:
        """AssetUploaded in, AssetTagged out."""
        original = uploaded.asset.original
        data = await self._store.get(original.bucket, original.key)
        with tracer().start_as_current_span("decode"), STAGE_SECONDS.labels("tagger", "decode").time():
            image = await asyncio.to_thread(decode, data, self._limits, WORKING_SIDE)
        # Classifying and measuring overlap (ONNX Runtime and NumPy release the GIL): an artist waits on both.
        with tracer().start_as_current_span("classify and measure") as span:
            with STAGE_SECONDS.labels("tagger", "tag").time():
                seen, tags = await asyncio.gather(
                    asyncio.to_thread(self._classifier.see, image), asyncio.to_thread(compute_tags, image)
                )
            tagged = tagged_event(uploaded, tags, seen)
            span.set_attributes(span_attributes(tagged.tags))
        return tagged


def declare(settings: TaggerSettings) -> Service:
    """The tagger service."""
    store = ObjectStore(settings)
    service = Service("tagger", settings)
    service.check("store", store.ping)
    classifier = Classifier(settings.classifier_dir, settings.category_threshold)
    service.add(classifier)
    tagger = Tagger(store, settings.limits, classifier)
    service.consume(topics.UPLOADED, tagger.tag, publishes=topics.TAGGED, concurrency=settings.tagger_concurrency)
    return service
