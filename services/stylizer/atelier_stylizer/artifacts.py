"""Model artifacts on disk: load one with every check, export its ONNX graph on first use.

Writing artifacts (training, packaging) is the model workshop's job: atelier_workshop.artifacts.
"""

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from atelier_shared import InvalidModel
from atelier_stylizer.networks import Architecture, TransformerNet
from atelier_stylizer.registry import MANIFEST, WEIGHTS, ModelManifest, parse_manifest, verify_files

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


def read_manifest(folder: Path) -> ModelManifest:
    """The validated manifest of an artifact folder."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidModel(f"{folder}: no {MANIFEST}")
    return parse_manifest(path.read_bytes(), str(folder))


def state_mismatch(network: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """How a state dict fails to fit a network exactly (missing, unexpected, wrong shape), or ""."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(name for name in set(expected) & set(state) if expected[name].shape != state[name].shape)
    if missing or unexpected or wrong:
        return f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
    return ""


def load_network(folder: Path, manifest: ModelManifest | None = None) -> TransformerNet:
    """The FP32 network of a verified artifact; InvalidModel when files or tensors disagree with the manifest."""
    manifest = manifest or read_manifest(folder)
    verify_files(folder, manifest)
    network = TransformerNet(Architecture.from_dict(manifest.architecture))
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidModel(f"model {manifest.ref}: unreadable weights: {exc}") from exc
    if problem := state_mismatch(network, state):
        raise InvalidModel(
            f"model {manifest.ref}: weights do not fit architecture {json.dumps(manifest.architecture)}: {problem}"
        )
    network.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    return network.eval()
