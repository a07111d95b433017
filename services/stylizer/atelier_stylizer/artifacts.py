"""Model artifacts on disk: write one from a trained network, load one back with every check."""

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from atelier_shared import InvalidModel, sha256_hex
from atelier_stylizer.networks import Architecture, TransformerNet
from atelier_stylizer.registry import MANIFEST, ONNX, WEIGHTS, ModelManifest, parse_manifest, verify_files

ONNX_OPSET = 17


def export_onnx(network: TransformerNet, path: Path) -> None:
    """Export with dynamic batch, height and width (FP32)."""
    network = network.float().eval()
    sample = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (sample,),
            str(path),
            input_names=["image"],
            output_names=["stylized"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "stylized": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def write_artifact(
    network: TransformerNet,
    folder: Path,
    *,
    style: str,
    tier: str,
    version: int,
    working_side: int,
    with_onnx: bool = True,
    weights_dtype: torch.dtype = torch.float32,
    **fields: Any,
) -> ModelManifest:
    """Write weights (and ONNX), then the manifest that lists their hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        name: tensor.detach().to("cpu", weights_dtype).contiguous() for name, tensor in network.state_dict().items()
    }
    save_file(state, str(folder / WEIGHTS))
    files = {WEIGHTS: sha256_hex((folder / WEIGHTS).read_bytes())}
    if with_onnx:
        export_onnx(network, folder / ONNX)
        files[ONNX] = sha256_hex((folder / ONNX).read_bytes())
    manifest = ModelManifest(
        name=f"{style}-{tier}",
        version=version,
        style=style,
        tier=tier,  # type: ignore[arg-type]
        architecture=network.architecture.to_dict(),
        working_side=working_side,
        files=files,
        **fields,
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return manifest


def read_manifest(folder: Path) -> ModelManifest:
    """The validated manifest of an artifact folder."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidModel(f"{folder}: no {MANIFEST}")
    return parse_manifest(path.read_bytes(), str(folder))


def load_network(folder: Path, manifest: ModelManifest | None = None) -> TransformerNet:
    """The FP32 network of a verified artifact; InvalidModel when files or tensors disagree with the manifest."""
    manifest = manifest or read_manifest(folder)
    verify_files(folder, manifest)
    network = TransformerNet(Architecture.from_dict(manifest.architecture))
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidModel(f"model {manifest.ref}: unreadable weights: {exc}") from exc
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(name for name in set(expected) & set(state) if expected[name].shape != state[name].shape)
    if missing or unexpected or wrong:
        raise InvalidModel(
            f"model {manifest.ref}: weights do not fit architecture {json.dumps(manifest.architecture)}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
        )
    network.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    return network.eval()


def repackage(
    source: Path, target: Path, weights_dtype: torch.dtype = torch.float16, with_onnx: bool = False
) -> ModelManifest:
    """Copy an artifact with its weights stored at another precision (the shipped defaults: FP16, no ONNX)."""
    manifest = read_manifest(source)
    network = load_network(source, manifest)
    fields = manifest.model_dump(
        exclude={"format", "name", "version", "style", "tier", "architecture", "working_side", "files", "created_at"}
    )
    return write_artifact(
        network,
        target,
        style=manifest.style,
        tier=manifest.tier,
        version=manifest.version,
        working_side=manifest.working_side,
        with_onnx=with_onnx,
        weights_dtype=weights_dtype,
        **{**fields, "precision": {**manifest.precision, "stored_weights": str(weights_dtype).removeprefix("torch.")}},
    )
