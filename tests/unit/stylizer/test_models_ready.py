"""A stylizer pool is ready only once the model of every style the brands route to is loaded."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from atelier_stylizer import models as models_module
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
    assert not models.ready({"tiles"})  # Published, not loaded yet.
    assert await models.load({"tiles", "brush"}) == ["brush"]  # brush has only a quality model.
    assert models.ready({"tiles"}) and not models.ready({"tiles", "brush"})
    make_model(tmp_path / "brush-fast", "brush", "fast")
    await registry.publish(tmp_path / "brush-fast")
    assert await models.load({"tiles", "brush"}) == []
    assert models.ready({"tiles", "brush"})


async def test_every_routed_style_is_loaded_before_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a pool loaded a style's model on the first request for it, which then waited for
    the load and the precision probe (a not-cached preview's p99 830 ms against a p50 of 351 ms)."""
    registry = ModelRegistry.open(str(tmp_path / "registry"), None, tmp_path / "cache")
    models = Models(registry, StylizerSettings(stylizer_pool="fast"))
    for style in ("tiles", "brush"):
        make_model(tmp_path / style, style, "fast")
        await registry.publish(tmp_path / style)
    await asyncio.wait_for(models.load_forever({"tiles", "brush"}, interval_s=0.01), 60)
    assert models.ready({"tiles", "brush"})

    def no_load(*args: object) -> None:
        raise AssertionError("a request loaded a model")

    monkeypatch.setattr("atelier_stylizer.models.load_engine", no_load)
    for style in ("tiles", "brush"):
        assert (await models.engine(style)).manifest.style == style


async def test_a_refused_model_is_not_fetched_again_and_a_failing_load_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with no version of a style loaded, a corrupt latest one was downloaded again on
    every pass (every 2 s, the reason never logged); and an error that was not Atelier's own (an
    identity service's ValueError, an out-of-memory) ended the loader and crashed the pool."""
    registry = ModelRegistry.open(str(tmp_path / "registry"), None, tmp_path / "cache")
    models = Models(registry, StylizerSettings(stylizer_pool="fast"))
    for style in ("tiles", "brush"):
        make_model(tmp_path / style, style, "fast")
        await registry.publish(tmp_path / style)
    [weights] = (tmp_path / "registry").glob("brush-fast/*/weights.safetensors")
    weights.write_bytes(b"not the published tensors")
    fetched: list[str] = []
    fetch = registry.fetch

    async def counted(name: str, version: int) -> Any:
        fetched.append(name)
        return await fetch(name, version)

    monkeypatch.setattr(registry, "fetch", counted)
    failures = iter([RuntimeError("CUDA out of memory")])
    load = models_module.load_engine

    def flaky(*args: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return load(*args)

    monkeypatch.setattr(models_module, "load_engine", flaky)
    assert await models.load({"tiles", "brush"}) == ["brush", "tiles"]  # brush corrupt, tiles failed once.
    assert await models.load({"tiles", "brush"}) == ["brush"]
    assert await models.load({"tiles", "brush"}) == ["brush"]
    assert fetched.count("brush-fast") == 1 and models.ready({"tiles"})
