"""The status view forgets documents past their retention, in memory and in its changelog."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from atelier_shared import events, topics
from atelier_status.settings import StatusSettings
from atelier_status.view import StatusView
from tests.conftest import Deployment
from tests.kafka import produce, read_topic


@asynccontextmanager
async def running_view(deployment: Deployment) -> AsyncIterator[StatusView]:
    view = StatusView(deployment.settings(StatusSettings))
    await view.start()
    try:
        async with asyncio.timeout(60):
            while not view.ready:
                await asyncio.sleep(0.05)
        yield view
    finally:
        await view.stop()


async def upload(deployment: Deployment, asset_id: str, brand: str = "acme") -> None:
    header = events.AssetHeader(asset_id=asset_id, brand=brand, tier=events.TIER_PRODUCTION)
    header.timeline.uploaded_at.CopyFrom(events.now_timestamp())
    event = events.AssetUploaded(asset=header)
    settings = deployment.settings()
    topic = settings.topics.name(topics.UPLOADED)
    await produce(settings.kafka_bootstrap, topic, asset_id.encode(), event.SerializeToString())


async def folded(view: StatusView, asset_id: str) -> None:
    async with asyncio.timeout(60):
        while view.get(asset_id) is None:
            await asyncio.sleep(0.05)


async def test_documents_past_retention_are_forgotten_for_good(deployment: Deployment) -> None:
    """Regression: the status table was never pruned, so its memory, its changelog and every
    recovery grew with each asset ever processed. A document unchanged for the retention period is
    now deleted, with a tombstone in its changelog partition, so a recovery does not bring it back;
    a newer one stays, and the brand's indexes forget the deleted one."""
    async with running_view(deployment) as view:
        await upload(deployment, "old-asset")
        await folded(view, "old-asset")
        cutoff_ms = time.time() * 1000
        await asyncio.sleep(0.01)
        await upload(deployment, "new-asset")
        await folded(view, "new-asset")
        assert view.open_assets("acme") == {"old-asset", "new-asset"}

        assert await view.prune(cutoff_ms) == 1

        assert view.get("old-asset") is None
        assert view.get("new-asset") is not None
        assert view.open_assets("acme") == {"new-asset"}
        assert [status["asset_id"] for status in view.recent("acme", 10) or []] == ["new-asset"]
        assert await view.prune(cutoff_ms) == 0

    settings = deployment.settings()
    tombstoned = lambda records: any(r.key == b'"old-asset"' and r.value is None for r in records)  # noqa: E731 JSON keys
    changelog = await read_topic(settings.kafka_bootstrap, settings.topics.status_changelog, until=tombstoned)
    assert tombstoned(changelog)
    async with running_view(deployment) as recovered:  # Same app id: the table comes from its changelog.
        assert recovered.get("new-asset") is not None
        assert recovered.get("old-asset") is None
        assert recovered.open_assets("acme") == {"new-asset"}
