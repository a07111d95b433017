"""One inference interface over PyTorch (CPU or CUDA, FP32/FP16/BF16) and ONNX Runtime (FP32/INT8).

The only module that touches devices and precision. Engines take and return NCHW float32 arrays in
0..1 (outputs clamped) whose height and width are multiples of 4; they run under inference mode.
"""

import math
import os
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from atelier_shared import InvalidModel
from atelier_stylizer.artifacts import export_onnx, load_network
from atelier_stylizer.networks import TransformerNet, largest_batch
from atelier_stylizer.precision import hardware_id, int8_adopted
from atelier_stylizer.registry import ONNX, ONNX_INT8, ModelManifest

Backend = Literal["auto", "torch", "onnxruntime"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "bf16", "int8"]

_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Engine(Protocol):
    """A loaded model ready to stylize batches."""

    manifest: ModelManifest
    # e.g. "torch-cpu-fp32", "torch-cuda-fp16", "onnxruntime-cpu-int8"
    backend: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class TorchEngine:
    """A network on a PyTorch device at a precision."""

    def __init__(self, network: TransformerNet, manifest: ModelManifest, device: str, precision: str) -> None:
        if precision not in _TORCH_DTYPES:
            raise ValueError(f"PyTorch runs fp32, fp16 or bf16, not {precision!r}")
        # FP16 also runs on CPU (very slowly; "auto" never picks it there): it lets the FP16
        # numerics be checked on machines without a GPU.
        self.manifest = manifest
        self.backend = f"torch-{device}-{precision}"
        self._device = torch.device(device)
        self._dtype = _TORCH_DTYPES[precision]
        self._architecture = network.architecture
        # Channels-last lets CUDA convolutions use tensor cores without layout conversions.
        self._memory_format = torch.channels_last if device == "cuda" else torch.contiguous_format
        network = network.to(self._device, self._dtype)
        self._network = network.to(memory_format=self._memory_format).eval()  # type: ignore[call-overload]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The batch in as few equal passes as 32-bit indexing allows (a batch of 32 quality images
        at 1 MP failed on the H200 in reflection padding; bench/results/gpu-nvidia-h200.md)."""
        passes = math.ceil(len(batch) / largest_batch(self._architecture, batch.shape[2], batch.shape[3]))
        if passes == 1:
            return self._run(batch)
        return np.concatenate([self._run(piece) for piece in np.array_split(batch, passes)])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self._device, self._dtype, non_blocking=True)
            x = x.contiguous(memory_format=self._memory_format)
            y = self._network(x).float().clamp_(0.0, 1.0)
            return np.asarray(y.cpu().numpy())


class OnnxEngine:
    """An ONNX graph in an ONNX Runtime session."""

    def __init__(self, path: Path, manifest: ModelManifest, device: str, precision: str, threads: int | None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.manifest = manifest
        self.backend = f"onnxruntime-{device}-{precision}"
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ONNX Runtime raises its own exception types for bad graphs.
            raise InvalidModel(f"model {manifest.ref}: ONNX Runtime cannot load {path.name}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        output = self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        clipped: np.ndarray = np.clip(np.asarray(output), 0.0, 1.0)
        return clipped


def resolve_device(device: Device) -> str:
    """The device "auto" means here: CUDA when PyTorch sees a GPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("ATELIER_STYLIZER_DEVICE=cuda but PyTorch sees no CUDA device")
    return device


def load_engine(
    folder: Path,
    manifest: ModelManifest,
    backend: Backend = "auto",
    device: Device = "auto",
    precision: Precision = "auto",
    threads: int | None = None,
) -> Engine:
    """Load a verified artifact on the chosen backend, device and precision.

    "auto" means: FP16 on CUDA; on CPU, INT8 (ONNX Runtime) where the manifest records it adopted for
    this CPU, else FP32 (PyTorch). An artifact without model.onnx is exported once into its folder.
    """
    chosen_device = resolve_device(device)
    if precision != "auto":
        chosen_precision = precision
    elif chosen_device == "cuda":
        chosen_precision = "fp16"
    else:
        chosen_precision = "int8" if int8_adopted(manifest, hardware_id()) else "fp32"
    chosen_backend = backend if backend != "auto" else ("onnxruntime" if chosen_precision == "int8" else "torch")
    if threads and chosen_device == "cpu":
        torch.set_num_threads(threads)
    network = load_network(folder, manifest)
    if chosen_backend == "torch":
        return TorchEngine(network, manifest, chosen_device, chosen_precision)
    if chosen_precision == "int8":
        path = folder / ONNX_INT8
        if ONNX_INT8 not in manifest.files:
            raise InvalidModel(f"model {manifest.ref} has no INT8 graph ({ONNX_INT8}); quantize it first")
    elif chosen_precision == "fp32":
        path = folder / ONNX
        if not path.is_file():
            export_onnx(network, path)
    else:
        raise ValueError(f"ONNX Runtime runs fp32 or int8 here, not {chosen_precision!r}")
    return OnnxEngine(path, manifest, chosen_device, chosen_precision, threads or os.cpu_count())
