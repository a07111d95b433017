"""The stylizer in-process: hot swap of a published version, refusal of a corrupt one, nothing dropped."""

import asyncio
from pathlib import Path

import aiohttp
import pytest

from atelier_shared import EventProducer, ObjectStore, Outgoing, events, sha256_hex, topics
from atelier_stylizer.registry import WEIGHTS, ModelRegistry
from atelier_stylizer.service import declare
from atelier_stylizer.settings import StylizerSettings
from tests.conftest import Deployment, jpeg_bytes
from tests.kafka import read_topic
from tests.models import make_and_publish, make_model

pytestmark = pytest.mark.service


async def request(settings: StylizerSettings, store: ObjectStore, asset_id: str) -> Outgoing:
    data = jpeg_bytes(160, 120, seed=hash(asset_id) % 1000)
    key = f"acme/{asset_id}/original.jpg"
    await store.put(settings.bucket_originals, key, data, "image/jpeg")
    original = events.ObjectRef(
        bucket=settings.bucket_originals,
        key=key,
        sha256=sha256_hex(data),
        size=len(data),
        width=160,
        height=120,
        content_type="image/jpeg",
    )
    header = events.AssetHeader(asset_id=asset_id, brand="acme", tier=events.TIER_PRODUCTION, original=original)
    route = events.RouteDecision(style="tiles", strength=1.0, model_tier=events.MODEL_TIER_QUALITY)
    return Outgoing(topics.STYLIZE_QUALITY, events.StyleRequested(asset=header, route=route))


async def stylized_models(settings: StylizerSettings, count: int) -> dict[str, str]:
    records = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.STYLIZED), until=lambda f: len(f) >= count, timeout_s=60
    )
    return {record.key.decode(): events.AssetStylized.FromString(record.value).model for record in records}


async def test_new_version_is_hot_swapped_and_a_corrupt_one_refused(deployment: Deployment, tmp_path: Path) -> None:
    settings: StylizerSettings = deployment.settings(  # type: ignore[assignment]
        StylizerSettings, stylizer_pool="quality", model_refresh_s=0.2, stylizer_working_side=64, ops_port=0
    )
    store = ObjectStore(settings)
    registry = ModelRegistry.open(settings.registry_url, store, tmp_path / "publisher-cache")
    for version in (1, 2, 3):
        make_model(tmp_path / f"v{version}", "tiles", "quality", version=version, seed=version)
    await registry.publish(tmp_path / "v1")

    service = declare(settings)
    producer = EventProducer(settings.kafka_bootstrap, "test", settings.topics)
    await producer.start()
    await service.start()
    try:
        await producer.send([await request(settings, store, "first")])
        assert (await stylized_models(settings, 1))["first"] == "tiles-quality@1"

        await registry.publish(tmp_path / "v2")
        sent = []
        for index in range(12):  # Requests keep arriving across the swap.
            outgoing = await request(settings, store, f"during-{index}")
            await producer.send([outgoing])
            sent.append(outgoing.record_key)
            await asyncio.sleep(0.1)
        models = await stylized_models(settings, 1 + len(sent))
        assert set(sent) <= set(models), "a request was dropped during the swap"
        assert models[sent[-1]] == "tiles-quality@2"

        # v3's weights are corrupted in the store after publishing: refused, v2 keeps serving.
        await registry.publish(tmp_path / "v3")
        await store.put(
            settings.bucket_models,
            f"tiles-quality/3/{WEIGHTS}",
            b"not the published weights",
            "application/octet-stream",
        )
        await asyncio.sleep(0.5)
        await producer.send([await request(settings, store, "after-corrupt")])
        models = await stylized_models(settings, 2 + len(sent))
        assert models["after-corrupt"] == "tiles-quality@2"
    finally:
        await service.stop()
        await producer.stop()


async def test_a_started_pool_has_its_published_models_loaded_before_it_consumes(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Regression: the models loaded in the background while the pool already consumed, so a request
    reaching a new replica (one KEDA added) first waited for its style's load and precision probe."""
    settings: StylizerSettings = deployment.settings(  # type: ignore[assignment]
        StylizerSettings, stylizer_pool="fast", stylizer_working_side=64, ops_port=0
    )
    store = ObjectStore(settings)
    await asyncio.to_thread(make_and_publish, tmp_path / "models", store, settings.bucket_models)
    service = declare(settings)
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{service.http.port}/readyz"
            async with session.get(url) as response:  # At once: nothing left to load.
                assert response.status == 200, await response.text()
                assert (await response.json())["checks"]["models"] is True
    finally:
        await service.stop()
