"""A stylizer pool is ready only once every style the brands route to has a model of its tier."""

from pathlib import Path

from atelier_stylizer.models import Models
from atelier_stylizer.registry import ModelRegistry
from atelier_stylizer.settings import StylizerSettings
from tests.models import make_model


async def test_not_ready_until_every_routed_style_has_a_model_of_the_pools_tier(tmp_path: Path) -> None:
    """Regression: readiness checked only Kafka and the store, so with no models published a pool
    reported ready and every asset was dead-lettered as an unknown style."""
    registry = ModelRegistry.open(str(tmp_path / "registry"), None, tmp_path / "cache")
    models = Models(registry, StylizerSettings(stylizer_pool="fast"))
    for style, tier in (("tiles", "fast"), ("brush", "quality")):
        make_model(tmp_path / f"{style}-{tier}", style, tier)
        await registry.publish(tmp_path / f"{style}-{tier}")
    assert await models.ready({"tiles"})
    assert not await models.ready({"tiles", "brush"})  # brush has only a quality model.
    make_model(tmp_path / "brush-fast", "brush", "fast")
    await registry.publish(tmp_path / "brush-fast")
    assert await models.ready({"tiles", "brush"})
