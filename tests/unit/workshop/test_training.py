"""Training against the ImageNet-trained loss network: the loss falls, checkpoints resume, fast models distil,
artifacts serve through the registry on both backends, and a missing loss network is an error, never a fallback."""

import asyncio
from pathlib import Path

import numpy as np
import pytest

from atelier_shared import InvalidModel, sha256_hex
from atelier_stylizer.artifacts import read_manifest
from atelier_stylizer.inference import load_engine
from atelier_stylizer.registry import ModelRegistry
from atelier_workshop.lite0 import packaged_weights
from atelier_workshop.training.procedural import mosaic_tiles, write_content
from atelier_workshop.training.trainer import Progress, TrainSettings, train


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("training")
    write_content(root / "content", 6, size=96, seed=3)
    mosaic_tiles(size=128).save(root / "tiles.png")
    return root / "tiles.png", root / "content"


def settings(inputs: tuple[Path, Path], out: Path, **overrides: object) -> TrainSettings:
    style, content = inputs
    values: dict[str, object] = dict(
        style="tiles",
        style_image=style,
        content_dir=content,
        out_dir=out,
        tier="fast",
        steps=40,
        batch_size=2,
        image_size=64,
        style_size=96,
        checkpoint_every=20,
        learning_rate=2e-3,
    )
    values.update(overrides)
    return TrainSettings(**values)  # type: ignore[arg-type]


def test_a_few_steps_lower_the_loss_and_the_artifact_serves_on_both_backends(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    reports: list[Progress] = []
    manifest = train(settings(inputs, tmp_path / "model"), reports.append)
    assert reports[-1].losses["total"] < reports[0].losses["total"]
    assert reports[-1].step == 40 and reports[-1].images_per_s > 0
    assert manifest.ref == "tiles-fast@1" and manifest.loss_network == "efficientnet-lite0-imagenet"
    assert manifest.training["loss_network_sha256"] == sha256_hex(packaged_weights().read_bytes())
    assert manifest.training["steps"] == 40 and manifest.style_image_sha256
    assert {"final_losses", "parameters"} <= set(manifest.metrics)

    registry = ModelRegistry.open(str(tmp_path / "registry"), None, tmp_path / "cache")
    asyncio.run(registry.publish(tmp_path / "model"))
    fetched, folder = asyncio.run(registry.fetch("tiles-fast", 1))
    batch = np.random.default_rng(1).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
    torch_out = load_engine(folder, fetched, backend="torch", device="cpu", precision="fp32").run(batch)
    onnx_out = load_engine(folder, fetched, backend="onnxruntime", device="cpu", precision="fp32").run(batch)
    assert np.abs(torch_out.astype(int) - onnx_out.astype(int)).max() <= 2


def test_a_run_resumes_from_its_checkpoint(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "model"
    train(settings(inputs, out, steps=20))
    reports: list[Progress] = []
    train(settings(inputs, out, steps=40), reports.append)
    assert reports[0].step == 30  # Resumed after step 20 (progress is reported every 10 steps).
    with pytest.raises(ValueError, match="other settings"):
        train(settings(inputs, out, steps=60, style_weight=99.0))


def test_a_fast_model_distils_from_a_quality_one(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    train(settings(inputs, tmp_path / "quality", tier="quality", steps=4))
    reports: list[Progress] = []
    manifest = train(settings(inputs, tmp_path / "fast", teacher=tmp_path / "quality", steps=20), reports.append)
    assert set(reports[0].losses) == {"total", "pixel", "features"}
    assert reports[-1].losses["total"] < reports[0].losses["total"]
    assert manifest.training["distilled_from"] == read_manifest(tmp_path / "quality").ref


def test_a_missing_loss_network_is_an_error(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidModel, match="needs --loss-weights"):
        train(settings(inputs, tmp_path / "vgg", loss_network="vgg16"))
    with pytest.raises(InvalidModel, match="not found"):
        train(settings(inputs, tmp_path / "gone", loss_weights=tmp_path / "no-such-weights.pth"))
