"""Intake reads an announced object from the store (moto's S3 server) within the byte limit."""

import pytest

from atelier_shared import BrandBook, ImageTooLarge, ObjectStore, events
from atelier_shared.images import ImageLimits
from atelier_uploader.ingest import Ingestor, Submission
from atelier_uploader.intake import Intake
from tests.conftest import BRANDS, Deployment, jpeg_bytes

pytestmark = pytest.mark.service


async def nobody(asset_id: str) -> None:
    return None


async def test_an_object_replaced_by_a_larger_one_after_its_stat_is_read_only_to_the_limit(
    deployment: Deployment,
) -> None:
    """Regression: intake checked the size `stat` gave, then read the whole object, so one replaced in
    between (or a stat that lied) was read in full, however large. The read now stops one byte past
    the limit and the object is refused as too large."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    small, large = jpeg_bytes(64, 48), jpeg_bytes(640, 480)
    limits = ImageLimits(max_bytes=len(small) + 10)
    intake = Intake(store, Ingestor(store, BrandBook.load(BRANDS), limits, settings.bucket_originals), nobody)
    await store.put(settings.bucket_inbox, "partner/a.jpg", small, "image/jpeg")
    stat = await store.stat(settings.bucket_inbox, "partner/a.jpg")
    assert stat is not None
    await store.put(settings.bucket_inbox, "partner/a.jpg", large, "image/jpeg")  # Replaced after the stat.
    submission = Submission("a1", "acme", events.TIER_PRODUCTION, "", events.SOURCE_EVENT, "partner:a")
    with pytest.raises(ImageTooLarge, match=f"{len(small) + 11} bytes"):
        await intake._ingest(stat, submission)  # noqa: SLF001
