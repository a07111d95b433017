"""The registry: publish and fetch by name@version; inconsistent artifacts are refused clearly."""

import asyncio
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from atelier_shared import InvalidModel, UnknownStyle, sha256_hex
from atelier_stylizer.artifacts import load_network
from atelier_stylizer.registry import MANIFEST, WEIGHTS, ModelRegistry
from tests.models import make_model


def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.open(str(tmp_path / "registry"), None, tmp_path / "cache")


def test_publish_then_fetch_latest_version(tmp_path: Path) -> None:
    store = registry(tmp_path)
    for version in (1, 2):
        make_model(tmp_path / f"v{version}", "tiles", "fast", version=version, seed=version)
        asyncio.run(store.publish(tmp_path / f"v{version}"))
    assert asyncio.run(store.versions("tiles-fast")) == [1, 2]
    assert asyncio.run(store.latest("tiles-fast")) == 2
    manifest, folder = asyncio.run(store.fetch("tiles-fast", 2))
    assert manifest.ref == "tiles-fast@2" and (folder / WEIGHTS).is_file()
    assert isinstance(load_network(folder, manifest), torch.nn.Module)
    with pytest.raises(UnknownStyle, match="no model 'glass-fast'"):
        asyncio.run(store.latest("glass-fast"))


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    make_model(folder, "tiles", "quality")
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(InvalidModel, match="sha256"):
        load_network(folder)
    with pytest.raises(InvalidModel, match="sha256"):
        asyncio.run(registry(tmp_path).publish(folder))


def test_tensors_that_do_not_fit_the_architecture_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    make_model(folder, "tiles", "quality")
    state = load_file(str(folder / WEIGHTS))
    name = next(iter(state))
    state[name] = torch.zeros(3, 3)
    save_file(state, str(folder / WEIGHTS))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][WEIGHTS] = sha256_hex((folder / WEIGHTS).read_bytes())
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InvalidModel, match="wrong shape"):
        load_network(folder)


def test_manifest_that_lies_about_its_architecture_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    make_model(folder, "tiles", "quality")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["architecture"]["residual_blocks"] = 3
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InvalidModel, match="do not fit architecture"):
        load_network(folder)
    manifest["architecture"]["kind"] = "unet"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InvalidModel, match="invalid manifest"):
        load_network(folder)
