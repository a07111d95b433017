"""Writing model artifacts: from a trained network, or repackaged at another precision."""

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from atelier_shared import sha256_hex
from atelier_stylizer.artifacts import export_onnx, load_network, read_manifest
from atelier_stylizer.networks import TransformerNet
from atelier_stylizer.registry import MANIFEST, ONNX, WEIGHTS, ModelManifest


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
