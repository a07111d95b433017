"""Intake reads an announced object from the store (moto's S3 server) within the byte limit, and
publishes the good objects of a notification that also announces bad ones (embedded Kafka)."""

from collections.abc import AsyncIterator

import pytest

from atelier_shared import (
    AtelierError,
    AtelierSettings,
    BrandBook,
    EventProducer,
    ImageTooLarge,
    InvalidEvent,
    ObjectStore,
    Publisher,
    assets,
    events,
    topics,
)
from atelier_shared.images import ImageLimits
from atelier_uploader.ingest import Ingestor, Submission
from atelier_uploader.intake import Intake
from tests.conftest import BRANDS, Deployment, jpeg_bytes
from tests.kafka import read_topic
from tests.notifications import aws_s3_record

pytestmark = pytest.mark.service


async def nobody(asset_id: str) -> None:
    return None


def intake_of(settings: AtelierSettings, uploads: Publisher, limits: ImageLimits | None = None) -> Intake:
    """The uploader's intake, in the deployment's buckets."""
    store = ObjectStore(settings)
    ingestor = Ingestor(store, BrandBook.load(BRANDS), limits or ImageLimits(), settings.bucket_originals)
    return Intake(store, ingestor, nobody, uploads, settings.bucket_inbox, frozenset(settings.buckets()))


@pytest.fixture
async def uploads(deployment: Deployment) -> AsyncIterator[Publisher]:
    settings = deployment.settings()
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    yield Publisher(producer, topics.UPLOADED)
    await producer.stop()


async def test_an_object_replaced_by_a_larger_one_after_its_stat_is_read_only_to_the_limit(
    deployment: Deployment, uploads: Publisher
) -> None:
    """Regression: intake checked the size `stat` gave, then read the whole object, so one replaced in
    between (or a stat that lied) was read in full, however large. The read now stops one byte past
    the limit and the object is refused as too large."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    small, large = jpeg_bytes(64, 48), jpeg_bytes(640, 480)
    limits = ImageLimits(max_bytes=len(small) + 10)
    intake = intake_of(settings, uploads, limits)
    await store.put(settings.bucket_inbox, "partner/a.jpg", small, "image/jpeg")
    stat = await store.stat(settings.bucket_inbox, "partner/a.jpg")
    assert stat is not None
    await store.put(settings.bucket_inbox, "partner/a.jpg", large, "image/jpeg")  # Replaced after the stat.
    submission = Submission("a1", "acme", events.TIER_PRODUCTION, "", events.SOURCE_EVENT, "partner:a")
    with pytest.raises(ImageTooLarge, match=f"{len(small) + 11} bytes"):
        await intake._ingest(stat, submission)  # noqa: SLF001


async def test_a_notification_of_several_objects_publishes_the_good_ones_when_one_is_refused(
    deployment: Deployment, uploads: Publisher
) -> None:
    """Regression: a notification announcing several objects was handled as one, so one refused
    object (here: no brand in its key) dead-lettered the notification, and the good objects, stored
    as originals, were never published: lost unless someone replayed a letter naming another object."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    intake = intake_of(settings, uploads)
    for key in ("acme/good.jpg", "no-brand.jpg", "acme/also-good.jpg"):
        await store.put(settings.bucket_inbox, key, jpeg_bytes(64, 48), "image/jpeg")
    keys = ("acme/good.jpg", "no-brand.jpg", "acme/also-good.jpg")
    notification = {"Records": [aws_s3_record(key, bucket=settings.bucket_inbox) for key in keys]}
    with pytest.raises(InvalidEvent, match="no brand"):
        await intake.drop(notification)
    records = await read_topic(
        settings.kafka_bootstrap,
        settings.topics.name(topics.UPLOADED),
        until=lambda found: len(found) >= 2,
        timeout_s=30,
    )
    published = sorted(events.AssetUploaded.FromString(record.value).asset.source_uri for record in records)
    assert published == [
        f"s3://{settings.bucket_inbox}/acme/also-good.jpg",
        f"s3://{settings.bucket_inbox}/acme/good.jpg",
    ]


@pytest.mark.parametrize(
    ("key", "metadata", "brand"), [("acme/broken.jpg", {}, "acme"), ("x/y.jpg", {"brand": "lumen"}, "lumen")]
)
async def test_a_refused_drop_names_the_brand_its_key_or_stored_metadata_gives(
    deployment: Deployment, uploads: Publisher, key: str, metadata: dict[str, str], brand: str
) -> None:
    """Regression: a dropped object's errors were stamped with the brand of the notification's metadata
    only, so a broken image dropped under acme/ (or, from AWS S3, carrying its brand only in the stored
    object's metadata) was dead-lettered with no brand: its failed status was visible to admin keys
    only, and the brand's own key was answered 404."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    intake = intake_of(settings, uploads)
    await store.put(settings.bucket_inbox, key, b"not an image", "image/jpeg", metadata=metadata)
    with pytest.raises(AtelierError) as refused:
        await intake.drop({"Records": [aws_s3_record(key, bucket=settings.bucket_inbox)]})
    assert not refused.value.retriable
    record = aws_s3_record(key, bucket=settings.bucket_inbox)
    asset_id = assets.asset_id_for_object(settings.bucket_inbox, key, record["s3"]["object"]["eTag"])  # type: ignore[index]
    assert (refused.value.brand, refused.value.asset_id) == (brand, asset_id)


async def test_an_intake_event_naming_atelier_buckets_or_no_object_is_refused(
    deployment: Deployment, uploads: Publisher
) -> None:
    """Regression: intake read whatever bucket and key an event named, with the uploader's own
    credentials, so an event of lumen's naming acme's stored original (keys derive from ids that can
    be computed), or acme's drop in the inbox (processed once already, as acme's), had acme's image
    processed and handed out as lumen's; and an event with no bucket or key failed inside the S3
    client with an empty ValueError, retried and dead-lettered as such."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    intake = intake_of(settings, uploads)
    acmes = "acme/a1/original.jpg"
    await store.put(settings.bucket_originals, acmes, jpeg_bytes(64, 48), "image/jpeg")
    await store.put(settings.bucket_inbox, "acme/drop.jpg", jpeg_bytes(64, 48), "image/jpeg")
    for bucket, key, refusal in (
        (settings.bucket_originals, acmes, "in one of Atelier's buckets"),
        (settings.bucket_inbox, "acme/drop.jpg", "in one of Atelier's buckets"),
        ("", "x.jpg", "bucket and key"),
        ("partner", "", "bucket and key"),
    ):
        event = events.AssetSubmitted(asset_id="p-1", brand="lumen", bucket=bucket, key=key)
        with pytest.raises(InvalidEvent, match=refusal) as refused:
            await intake.submitted(event)
        assert (refused.value.brand, refused.value.asset_id) == ("lumen", "p-1")
    forged = {"Records": [aws_s3_record(acmes, bucket=settings.bucket_originals)]}  # Published by hand.
    with pytest.raises(InvalidEvent, match="drops are announced for the inbox"):
        await intake.drop(forged)
