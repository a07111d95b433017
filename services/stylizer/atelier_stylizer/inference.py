"""One inference interface over PyTorch (CPU or CUDA, FP32/FP16/BF16) and ONNX Runtime (FP32/INT8).

The only module that chooses devices and precision. Engines take and return batches of 8-bit RGB
images, (N, H, W, 3) uint8, whose height and width are multiples of 4; outputs are clamped.
"""

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import numpy as np
import torch
from joblib import cpu_count
from threadpoolctl import threadpool_limits

from atelier_shared import InvalidModel, get_logger
from atelier_stylizer.artifacts import export_onnx, load_network
from atelier_stylizer.networks import TransformerNet
from atelier_stylizer.precision import cpu_reports_bf16, hardware_id, int8_adopted
from atelier_stylizer.registry import ONNX, ONNX_INT8, ModelManifest
from atelier_stylizer.runner import TorchRunner

log = get_logger(__name__)
T = TypeVar("T")

Backend = Literal["auto", "torch", "onnxruntime"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "bf16", "int8"]
Compile = Literal["auto", "on", "off"]

# BF16 is chosen on a CPU only where it keeps this close to FP32 on the probe and is clearly faster.
BF16_GATE_DB = 40.0
BF16_MIN_SPEEDUP = 1.2
# Timed rounds of the probe (an FP32 and a BF16 run each); more, up to PROBE_MAX_ROUNDS within
# PROBE_MAX_S of probing, while the speedup it reads lies within PROBE_UNSURE of BF16_MIN_SPEEDUP
# either way, where a busy moment can tip the verdict.
PROBE_ROUNDS = 7
PROBE_MAX_ROUNDS = 21
PROBE_MAX_S = 5.0
PROBE_UNSURE = 1.25


class Engine(Protocol):
    """A loaded model ready to stylize batches."""

    manifest: ModelManifest
    # e.g. "torch-cpu-fp32", "torch-cuda-fp16-compiled", "onnxruntime-cpu-int8"
    backend: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class TorchEngine:
    """A network on a PyTorch device at a precision, eager or compiled."""

    def __init__(
        self, network: TransformerNet, manifest: ModelManifest, device: str, precision: str, compiled: bool = False
    ) -> None:
        # FP16 also runs on CPU (very slowly; "auto" never picks it there): it lets the FP16
        # numerics be checked on machines without a GPU.
        self.manifest = manifest
        self.backend = f"torch-{device}-{precision}" + ("-compiled" if compiled else "")
        self.runner = TorchRunner(network, device, precision, compiled)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(batch)


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
        x = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        y = np.asarray(self._session.run(None, {self._input: np.ascontiguousarray(x)})[0])
        pixels: np.ndarray = (np.clip(y, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(pixels)


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
    compile: Compile = "auto",
    working_side: int = 0,
) -> Engine:
    """Load a verified artifact on the chosen backend, device and precision, and say what was chosen.

    "auto" precision means: FP16 on CUDA; on CPU, INT8 (ONNX Runtime) where the manifest records it
    adopted for this CPU, else BF16 where this CPU reports BF16 instructions and a probe measures it
    faster and within the gate, else FP32 (ONNX Runtime: FP32). "auto" compile means compiled on CUDA,
    eager on CPU, warming up at `working_side` (0: the manifest's). An artifact without model.onnx is
    exported once into its folder.
    """
    chosen_device = resolve_device(device)
    # One per physical core, as PyTorch and ONNX Runtime choose, but within a container's CPU limit.
    threads = threads or cpu_count(only_physical_cores=True)
    if chosen_device == "cpu":
        torch.set_num_threads(threads)
    network = load_network(folder, manifest)
    probe: dict[str, float] = {}
    chosen_precision: str
    if precision != "auto":
        chosen_precision = precision
    elif chosen_device == "cuda":
        chosen_precision = "fp16"
    elif int8_adopted(manifest, hardware_id()):
        chosen_precision = "int8"
    elif backend == "onnxruntime":
        chosen_precision = "fp32"
    else:
        chosen_precision, probe = cpu_float_precision(network)
    chosen_backend = backend if backend != "auto" else ("onnxruntime" if chosen_precision == "int8" else "torch")
    engine: Engine
    if chosen_backend == "torch":
        compiled = compile == "on" or (compile == "auto" and chosen_device == "cuda")
        if compiled and chosen_device == "cuda":
            # cuDNN times its convolution algorithms once per shape and keeps the fastest: compiled
            # shapes come in buckets (eager ones do not: each new size would be timed), and `make
            # bench-gpu` measured every row with this on.
            torch.backends.cudnn.benchmark = True
        engine = TorchEngine(network, manifest, chosen_device, chosen_precision, compiled)
        if compiled:
            warm_up(engine.runner, working_side or manifest.working_side)
    else:
        engine = OnnxEngine(
            onnx_graph(folder, manifest, network, chosen_precision),
            manifest,
            chosen_device,
            chosen_precision,
            threads,
        )
    log.info(
        "engine chosen", model=manifest.ref, backend=engine.backend, hardware=hardware_id(), threads=threads, **probe
    )
    return engine


def onnx_graph(folder: Path, manifest: ModelManifest, network: TransformerNet, precision: str) -> Path:
    """The artifact's ONNX graph for a precision (the FP32 one exported on first use)."""
    if precision == "int8":
        if ONNX_INT8 not in manifest.files:
            raise InvalidModel(f"model {manifest.ref} has no INT8 graph ({ONNX_INT8}); quantize it first")
        return folder / ONNX_INT8
    if precision != "fp32":
        raise ValueError(f"ONNX Runtime runs fp32 or int8 here, not {precision!r}")
    path = folder / ONNX
    if not path.is_file():
        export_onnx(network, path)
    return path


def probe_image(side: int) -> np.ndarray:
    """A photo-like 1xHxWx3 batch (smooth gradients, soft shapes, fine texture, hard edges), made here so
    that choosing a precision needs no files."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rng = np.random.default_rng(7)
    red = 0.5 + 0.4 * np.sin(3.0 * x + 1.0) * np.cos(2.0 * y)
    green = 0.4 + 0.3 * np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) * 8.0)
    blue = 0.3 + 0.5 * y * (x > 0.5)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0.0, 0.03, (side, side, 3))
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)[None]


def psnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """PSNR between two 8-bit batches."""
    mse = float(((reference.astype(np.float64) - candidate.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


# What the probe measured per architecture and probe size in this process: the styles of a pool share
# one architecture, so only the first model loaded pays for the timing (about 1.6 s for a quality
# model, on one thread); each later one still has its own outputs compared.
_PROBE_SECONDS: dict[tuple[str, int], dict[str, float]] = {}


def fastest_runs(runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """The fastest of each run's timings (seconds), "fp32" against "bf16": contention only ever adds time.

    Interleaved, so a neighbour's burst on a shared machine weighs on both alike; where even the
    fastest runs read close to the threshold, more rounds are timed (a busy moment can tip them).
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(1, PROBE_MAX_ROUNDS + 1):
        for name, run in runs.items():
            begun = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - begun)
        fastest = {name: min(values) for name, values in times.items()}
        speedup = fastest["fp32"] / fastest["bf16"]
        unsure = BF16_MIN_SPEEDUP / PROBE_UNSURE <= speedup < BF16_MIN_SPEEDUP * PROBE_UNSURE
        spent = sum(sum(values) for values in times.values())
        if round_ >= PROBE_ROUNDS and (not unsure or spent >= PROBE_MAX_S):
            break
    return fastest


def on_one_thread(function: Callable[[], T]) -> T:
    """`function()` with PyTorch's operators on one OpenMP thread, in the calling thread only.

    OpenMP's thread count is per thread, and PyTorch sets a thread's own on its first operator there:
    that comes first, so the limit holds; every other thread, and this one afterwards, keeps its own.
    """
    torch.get_num_threads()
    with threadpool_limits(limits=1, user_api="openmp"):
        return function()


def cpu_float_precision(network: TransformerNet, side: int = 256) -> tuple[str, dict[str, float]]:
    """BF16 or FP32 on this CPU, by what it reports and measures, never assumed: BF16 is probed only
    where the CPU has BF16 instructions (emulated BF16 ran for minutes where FP32 took 1.5 s), and
    chosen only where it measures at least BF16_MIN_SPEEDUP faster at batch 1 with this model's output
    within BF16_GATE_DB of FP32's.

    The probe times one thread: what the instructions are worth per core, whatever share of the cores
    the process gets meanwhile. With both pools probing at once beside a busy core, the lowest speedups
    read were 1.93 (quality) and 1.67 (fast) in twelve starts on one thread, 1.86 and 1.46 in six on
    two. (One start during a full test run read the fast network at FP32 872 ms, BF16 854 ms on two
    threads, where alone it reads 82 and 40, and chose FP32; CPU-bound neighbours alone did not
    reproduce that, so its cause is not known; bench/results/bf16-probe-cpu-2core.md.)
    """
    if not cpu_reports_bf16():
        return "fp32", {}
    image = probe_image(side)
    runners = {name: TorchRunner(network, "cpu", name) for name in ("fp32", "bf16")}
    outputs = {name: runner(image) for name, runner in runners.items()}  # Warm-up, and the outputs compared.
    key = (repr(network.architecture), side)
    if key not in _PROBE_SECONDS:
        runs: dict[str, Callable[[], object]] = {
            name: functools.partial(runner, image) for name, runner in runners.items()
        }
        _PROBE_SECONDS[key] = on_one_thread(functools.partial(fastest_runs, runs))
    fastest = _PROBE_SECONDS[key]
    probe = {
        "fp32_ms": round(fastest["fp32"] * 1e3, 1),
        "bf16_ms": round(fastest["bf16"] * 1e3, 1),
        "bf16_psnr_db": round(psnr_db(outputs["fp32"], outputs["bf16"]), 2),
    }
    faster = fastest["fp32"] >= BF16_MIN_SPEEDUP * fastest["bf16"]
    return ("bf16" if faster and probe["bf16_psnr_db"] >= BF16_GATE_DB else "fp32"), probe


def warm_up(runner: TorchRunner, working_side: int) -> None:
    """Start compiling the commonest shape (one square image at working size) in the background: the
    model serves eager until it is ready (compiling took 31-42 s on the H200), and every other shape
    compiles the first time it is seen."""
    side = max(32, working_side // 4 * 4)
    runner.compile_soon(1, side, side)
