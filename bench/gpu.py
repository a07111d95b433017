"""make bench-gpu: the style networks and the JPEG-in, JPEG-out path on a GPU, CPU rows beside them.

Built for one short call on a lent GPU machine: it imports only PyTorch, torchvision, ONNX Runtime,
safetensors, Pillow and numpy plus the project's network code (PYTHONPATH=services/stylizer), so it
runs on the device machine's own Python without the project's virtual environment, and it downloads
nothing (the weights are the shipped default models; the photos are synthesised).

Sections, in order of importance; each is timed against --budget seconds, and what no longer fits
is reported as skipped. The report (bench/results/gpu-<device>.{md,json}, or --out) is rewritten
after every section, so a run cut short still leaves what it measured.
0. the stylizer service's own runner (atelier_stylizer.runner), host arrays in and out as the
   service hands them over: its uint8 pinned path eager and compiled beside the float32 path it
   replaced, and compiled called from one thread and from two (its copies overlapping the other
   batch's compute); then its decoding of JPEG originals to working size, nvJPEG (devicedecode) vs Pillow,
   and its whole batch path (decode, runner, encode), one batch at a time and two in flight; and
   what bounds the quality network: the kernels it spends its time in (torch.profiler);
1. networks at --size (1 MP by default): quality and fast, FP16/BF16/FP32, eager, CUDA graph and
   torch.compile, batch 1/8/32: median ms per batch, MP/s and the compute floor;
2. batch-1 latency p50/p99 of the quality network;
3. JPEG in to JPEG out: nvJPEG decode and encode on the GPU vs Pillow on the CPU cores;
4. ONNX Runtime's CUDA (and TensorRT, if present) providers side by side with PyTorch;
5. CPU rows: the same networks on the CPU, and Pillow decode/encode, as the baseline.
Without CUDA it runs a short mode: section 5 only, saying the CUDA rows were skipped.
"""

import argparse
import functools
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from safetensors.torch import load_file

from atelier_stylizer.devicedecode import DeviceDecoder, open_decoder
from atelier_stylizer.networks import Architecture, TransformerNet, largest_batch
from atelier_stylizer.runner import TorchRunner, powers_of_two

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "tools" / "workshop" / "atelier_workshop" / "default_models"
NETWORKS = {"quality": "tiles-quality", "fast": "tiles-fast"}
QUALITY_FAST = tuple(NETWORKS)
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# Dense tensor-core peaks from NVIDIA's datasheets (FP32 convolutions run as TF32 under PyTorch's
# default cudnn.allow_tf32), to put the compute floor beside what was reached.
PEAK_TFLOPS = {"H100 PCIe": {"fp16": 756, "bf16": 756, "fp32": 378}, "H100": {"fp16": 989, "bf16": 989, "fp32": 494}}
PEAK_TFLOPS["H200"] = PEAK_TFLOPS["H100"]


class Report:
    """Rows per section plus notes, rewritten to Markdown and JSON after every section."""

    def __init__(self, out: Path, budget: float) -> None:
        self.started = time.monotonic()
        self.budget = budget
        self.info = environment()
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []
        self.out = out

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def add(self, section: str, row: dict[str, Any]) -> None:
        self.sections.setdefault(section, []).append(row)
        print(section, json.dumps(row), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print("note:", text, flush=True)

    def write(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        stem = self.out / f"gpu-{self.info['slug']}"
        payload = {"machine": self.info, "notes": self.notes, "sections": self.sections}
        stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(payload, time.monotonic() - self.started))
        return stem.with_suffix(".md")


def environment() -> dict[str, Any]:
    """What ran the benchmark: date, CPU, GPU and library versions."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    for name in ("torchvision", "onnxruntime", "triton"):
        try:
            module = __import__(name)
            info[name] = module.__version__
        except ImportError:
            info[name] = None
    if info["onnxruntime"]:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    gpu = info["gpu"] or "cpu-only"
    info["slug"] = "-".join(part for part in gpu.lower().split() if not part.endswith("gb"))
    return info


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX: where PyTorch's CPU BF16 convolutions are fast (on AVX2 they take minutes)."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    return " avx512_bf16" in text or " amx_bf16" in text


def load(tier: str) -> TransformerNet:
    """A shipped default model's FP32 network."""
    folder = max((MODELS / NETWORKS[tier]).iterdir(), key=lambda path: int(path.name))
    manifest = json.loads((folder / "manifest.json").read_text())
    network = TransformerNet(Architecture.from_dict(manifest["architecture"]))
    network.load_state_dict(load_file(str(folder / "weights.safetensors")))
    return network.eval()


def flops_per_pixel(network: TransformerNet) -> float:
    """Multiply-adds of every convolution, as FLOPs per input pixel (all layers scale with the area)."""
    total = 0

    def count(module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        conv = module
        assert isinstance(conv, torch.nn.Conv2d)
        kernel = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total += 2 * output.numel() * kernel

    hooks = [module.register_forward_hook(count) for module in network.modules() if isinstance(module, torch.nn.Conv2d)]
    with torch.inference_mode():
        network(torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    return total / (64 * 64)


def peak(gpu: str | None, precision: str) -> float | None:
    for name, peaks in PEAK_TFLOPS.items():
        if gpu and name in gpu:
            return peaks[precision] * 1e12
    return None


def photos(count: int, side: int) -> list[bytes]:
    """Photo-like JPEGs (quality 90): smooth colour fields, shapes with soft edges, sensor noise."""
    rng = np.random.default_rng(7)
    made = []
    for index in range(count):
        field = Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC
        )
        draw = ImageDraw.Draw(field)
        for _ in range(12):
            x, y = rng.integers(0, side, 2)
            radius = int(rng.integers(side // 20, side // 5))
            colour = tuple(int(value) for value in rng.integers(0, 255, 3))
            shape = draw.ellipse if index % 2 else draw.rectangle
            shape((x - radius, y - radius, x + radius, y + radius), fill=colour)
        field = field.filter(ImageFilter.GaussianBlur(1.5))
        noisy = np.asarray(field, dtype=np.int16) + rng.normal(0, 6, (side, side, 3)).astype(np.int16)
        buffer = io.BytesIO()
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        made.append(buffer.getvalue())
    return made


# How long each row is timed, as a share of its `seconds` (--quick: the test of the short mode).
TIMING_SHARE = 1.0


def timings(step: Callable[[], Any], sync: Callable[[], None], seconds: float, least: int = 5) -> list[float]:
    """Seconds per call: two warm-up calls, then at least `least` calls and about `seconds` in all."""
    seconds *= TIMING_SHARE
    for _ in range(2):
        step()
        sync()
    times: list[float] = []
    begun = time.perf_counter()
    while len(times) < least or (time.perf_counter() - begun < seconds and len(times) < 1000):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


@contextmanager
def section(report: Report, name: str, needs: float) -> Iterator[bool]:
    """Run a section if `needs` seconds are left; record its failure instead of stopping the run."""
    if report.left() < needs:
        report.note(f"{name}: skipped, {report.left():.0f} s of the budget left (needs about {needs:.0f} s)")
        yield False
        return
    try:
        yield True
    except Exception as exc:  # A GPU library's failure is a result to report, not a reason to stop.
        report.note(f"{name}: failed: {type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        report.write()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def cuda_sync() -> None:
    torch.cuda.synchronize()


def no_sync() -> None:
    return None


def on_device(network: TransformerNet, device: str, dtype: torch.dtype) -> torch.nn.Module:
    layout = torch.channels_last if device == "cuda" else torch.contiguous_format
    moved: torch.nn.Module = network.to(device, dtype).to(memory_format=layout)  # type: ignore[call-overload]
    return moved.eval()


def graphed(network: torch.nn.Module, sample: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network captured as a CUDA graph for the sample's shape: one launch per batch."""
    static_input = sample.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            network(static_input)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = network(static_input)

    def run(x: torch.Tensor) -> torch.Tensor:
        static_input.copy_(x)
        graph.replay()
        return static_output

    return run


COMPILE_MODES = {"compiled": "default", "compiled max-autotune": "max-autotune-no-cudagraphs"}
COMPILE_MODES["compiled reduce-overhead"] = "reduce-overhead"


def runner(network: torch.nn.Module, mode: str, sample: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network as run in `mode`: eager, captured as a CUDA graph, or compiled by inductor (fresh:
    dynamo's cache is per code object, so every TransformerNet shares it and would hit its
    recompile limit, after which calls silently run eager)."""
    if mode == "eager":
        return network
    if mode == "cuda graph":
        return graphed(network, sample)
    torch._dynamo.reset()
    return torch.compile(network, mode=COMPILE_MODES[mode], dynamic=False)  # type: ignore[return-value]


def chunked(run: Callable[[torch.Tensor], torch.Tensor], passes: int) -> Callable[[torch.Tensor], Any]:
    """Run a batch in `passes` equal pieces (see networks.largest_batch): one shape, one CUDA graph.

    (The first run of 2026-11-27 split 32 into 31 + 1 and replayed the 31-image graph for the
    single image too, halving the CUDA graph rows at batch 32.)"""
    return lambda x: [run(piece) for piece in x.tensor_split(passes)]


def network_rows(report: Report, side: int, plan: list[tuple[str, str, str]]) -> None:
    """Section 1: median time per batch (1, 8, 32) for each (tier, precision, mode) in the plan."""
    for tier, precision, mode in plan:
        name = f"networks {tier} {precision} {mode}"
        with section(report, name, needs=120 if "max-autotune" in mode else 40 if "compiled" in mode else 15) as go:
            if go:
                network_row(report, tier, precision, mode, side, (1, 8, 32))


# What serving would run first (FP16/BF16, eager and CUDA graph, FP16 compiled), then the rest.
FIRST = [
    *(
        (tier, precision, mode)
        for precision in ("fp16", "bf16")
        for tier in QUALITY_FAST
        for mode in ("eager", "cuda graph")
    ),
    *((tier, "fp16", "compiled") for tier in QUALITY_FAST),
]
REST = [
    *(("quality", "fp32", mode) for mode in ("eager", "cuda graph")),
    *(("fast", "fp32", mode) for mode in ("eager", "cuda graph")),
    *((tier, "bf16", "compiled") for tier in QUALITY_FAST),
    *((tier, "fp32", "compiled") for tier in QUALITY_FAST),
    ("quality", "fp16", "compiled max-autotune"),
]


def network_row(report: Report, tier: str, precision: str, mode: str, side: int, batches: tuple[int, ...]) -> None:
    base = load(tier)
    flops = flops_per_pixel(base) * side * side
    most = largest_batch(base.architecture, side, side)
    network = on_device(base, "cuda", DTYPES[precision])
    compiled = None
    for batch in batches:
        x = torch.rand(batch, 3, side, side, device="cuda", dtype=DTYPES[precision])
        x = x.contiguous(memory_format=torch.channels_last)
        passes = math.ceil(batch / most)
        piece = x[: math.ceil(batch / passes)]
        with torch.inference_mode():
            begun = time.perf_counter()
            if mode.startswith("compiled"):
                if compiled is None:
                    compiled = runner(network, mode, piece)
                compiled(piece)
                cuda_sync()
                run = chunked(compiled, passes)
            else:
                run = chunked(runner(network, mode, piece), passes)
            setup = time.perf_counter() - begun
            times = timings(lambda: run(x), cuda_sync, seconds=1.0)  # noqa: B023 (used within the iteration)
        median = statistics.median(times)
        megapixels = batch * side * side / 1e6
        top = peak(report.info["gpu"], precision)
        report.add(
            "networks",
            {
                "tier": tier,
                "precision": precision,
                "mode": mode,
                "batch": batch if passes == 1 else f"{batch} as {passes} passes",
                "ms": round(median * 1e3, 3),
                "mp_per_s": round(megapixels / median, 1),
                "tflops": round(batch * flops / median / 1e12, 1),
                "floor_ms": round(batch * flops / top * 1e3, 3) if top else None,
                "setup_s": round(setup, 1),
            },
        )


def service_rows(report: Report, side: int, device: str) -> None:
    """Section 0: what the stylizer runs, host to host: the float32 arrays of the service before
    2026-11-27, then its uint8 runner eager (channels-last and NCHW) and compiled (static shapes in
    buckets, each compiled before it is timed; new_shape_s is the first call at a shape not compiled
    yet, served eager while it compiles in the background, and compiled_after_s when that was done)."""
    precision = "fp16" if device == "cuda" else "fp32"
    sync = cuda_sync if device == "cuda" else no_sync
    batches = (1, 8, 32) if device == "cuda" else (1,)
    modes = ["float32 arrays, eager", "uint8 runner, eager", "uint8 runner, eager NCHW"]
    modes += ["uint8 runner, compiled"] if device == "cuda" else []
    for tier in QUALITY_FAST:
        for mode in modes:
            with section(report, f"service {tier} {mode}", needs=60 if "compiled" in mode else 15) as go:
                if go:
                    service_row(report, tier, precision, mode, side, device, sync, batches)


def service_row(
    report: Report,
    tier: str,
    precision: str,
    mode: str,
    side: int,
    device: str,
    sync: Callable[[], None],
    batches: tuple[int, ...],
) -> None:
    network = load(tier)
    begun = time.perf_counter()
    first_new_shape_s = compiled_after_s = None
    if mode.startswith("float32"):
        moved = on_device(network, device, DTYPES[precision])

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = torch.from_numpy(batch).to(device, DTYPES[precision], non_blocking=True)
                x = x.contiguous(memory_format=torch.channels_last if device == "cuda" else torch.contiguous_format)
                return np.asarray(moved(x).float().clamp_(0.0, 1.0).cpu().numpy())

        inputs = {
            batch: np.random.default_rng(batch).random((batch, 3, side, side), dtype=np.float32) for batch in batches
        }
    else:
        torch._dynamo.reset()
        compiled = mode.endswith("compiled")
        # The modes as measured on 2026-11-27: "eager" is channels-last on CUDA (the runner's default
        # is now NCHW when eager, after that run).
        layout = "NCHW" not in mode and device == "cuda"
        run = TorchRunner(network, device, precision, compiled=compiled, channels_last=layout)
        if compiled:
            first_new_shape_s, compiled_after_s = compile_buckets(report, run, f"{tier} {mode}", side, batches)
        inputs = {
            batch: np.random.default_rng(batch).integers(0, 256, (batch, side, side, 3), dtype=np.uint8)
            for batch in batches
        }
    setup = time.perf_counter() - begun
    if isinstance(run, TorchRunner) and mode == (
        "uint8 runner, compiled" if device == "cuda" else "uint8 runner, eager"
    ):
        in_flight_rows(report, f"{tier} {precision} {mode}", run, [inputs[batch] for batch in batches if batch <= 8])
    for batch in batches:
        times = timings(lambda: run(inputs[batch]), sync, seconds=1.5)  # noqa: B023
        median = statistics.median(times)
        report.add(
            "service",
            {
                "tier": tier,
                "precision": precision,
                "mode": mode,
                "batch": batch,
                "ms": round(median * 1e3, 3),
                "mp_per_s": round(batch * side * side / 1e6 / median, 1),
                "setup_s": round(setup, 1),
                "new_shape_s": first_new_shape_s,
                "compiled_after_s": compiled_after_s,
            },
        )


def in_flight_rows(report: Report, name: str, run: TorchRunner, batches: list[np.ndarray], calls: int = 8) -> None:
    """The runner called from one thread and from two at once, as the stylizer's batches in flight
    call it (their copies overlap the other's compute): median ms per batch over `calls` calls; then
    `calls` different batches run from two threads, each output compared with its batch's run alone,
    where a race between streams or over a buffer would show (on CUDA: the CPU path holds its lock
    throughout)."""
    rng = np.random.default_rng(3)
    for batch in batches:
        distinct = [rng.integers(0, 256, batch.shape, dtype=np.uint8) for _ in range(calls)]
        alone = [run(pixels) for pixels in distinct]
        per_batch: dict[int, float] = {}
        for threads in (1, 2):
            with ThreadPoolExecutor(threads) as pool:
                times = timings(lambda: list(pool.map(run, [batch] * calls)), no_sync, seconds=1.5, least=3)  # noqa: B023
                outputs = list(pool.map(run, distinct)) if threads > 1 else []
            per_batch[threads] = statistics.median(times) / calls
            differences = [
                int(np.abs(out.astype(np.int16) - ref).max()) for out, ref in zip(outputs, alone, strict=False)
            ]
            report.add("service in flight", {
                "runner": name,
                "batch": len(batch),
                "threads": threads,
                "ms_per_batch": round(per_batch[threads] * 1e3, 3),
                "mp_per_s": round(batch[0].size / 3 * len(batch) / 1e6 / per_batch[threads], 1),
                "vs_one_thread": round(per_batch[1] / per_batch[threads], 2),
                "max_difference_vs_alone": max(differences) if differences else "reference",
            })  # fmt: skip


def pillow_working(jpeg: bytes, side: int) -> np.ndarray:
    """The stylizer's Pillow path for a JPEG it could send to the GPU (no colour profile, upright): decode,
    at a reduced DCT scale where the reduction is 2x or more, then Lanczos down to the working side
    (atelier_shared.images.decode and batches.prepare, which need the project's environment)."""
    with Image.open(io.BytesIO(jpeg)) as opened:
        scale = max(opened.size) / side
        if scale >= 2:
            opened.draft("RGB", (int(opened.width / scale), int(opened.height / scale)))
        image = opened.convert("RGB")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def decode_rows(report: Report, device: str, side: int = 1024) -> None:
    """Section 0, second part: the stylizer's decoding of an original to its working size, photo-like
    JPEGs as a camera (3072 px) and a web page (1080 px) send them: its nvJPEG decoder (one image at a
    time, as the pool calls it, host array out) against Pillow on one core and on all of them, and the
    PSNR of nvJPEG's pixels against Pillow's (the sizes scale with --size)."""
    decoder, reason = open_decoder(device)
    if decoder is None:
        report.note(f"service decode nvjpeg: skipped, {reason}")
    for source in (side * 135 // 128, side * 3):  # 1080 and 3072 px at the default side
        with section(report, f"service decode {source} px", needs=15) as go:
            if go:
                decode_row(report, decoder, source, side)


def decode_row(report: Report, decoder: DeviceDecoder | None, source: int, side: int) -> None:
    jpegs = photos(8, source)
    reference = [pillow_working(jpeg, side) for jpeg in jpegs]
    height, width = reference[0].shape[:2]
    cores = os.cpu_count() or 1
    pillow = functools.partial(pillow_working, side=side)
    ways: dict[str, tuple[Callable[[bytes], np.ndarray], int]] = {
        "pillow, 1 core": (pillow, 1),
        f"pillow, {cores} cores": (pillow, cores),
    }
    if decoder is not None:
        ways["nvjpeg"] = (functools.partial(decoder, width=width, height=height), 1)
    with ThreadPoolExecutor(cores) as pool:
        for way, (decode, threads) in ways.items():
            work = jpegs * threads
            times = timings(
                functools.partial(decode_all, pool.map if threads > 1 else map, decode, work), no_sync, 1.5, 3
            )
            per_image = statistics.median(times) / len(work)
            psnr = min(psnr_db(ref, decode(jpeg)) for ref, jpeg in zip(reference, jpegs, strict=True))
            report.add("service decode", {
                "decoder": way,
                "source": f"{source}x{source}",
                "working": f"{width}x{height}",
                "ms_per_image": round(per_image * 1e3, 2),
                "images_per_s": round(1 / per_image, 1),
                "source_mp_per_s": round(source * source / 1e6 / per_image, 1),
                "min_psnr_vs_pillow_db": round(psnr, 1) if math.isfinite(psnr) else "reference",
            })  # fmt: skip


def decode_all(
    mapper: Callable[..., Iterator[np.ndarray]], decode: Callable[[bytes], np.ndarray], jpegs: list[bytes]
) -> list[np.ndarray]:
    return list(mapper(decode, jpegs))


def stored(pixels: np.ndarray) -> bytes:
    """The stylized result as the stylizer stores it for the exporter (uncompressed TIFF)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF", compression="raw")
    return buffer.getvalue()


class StylizerPath:
    """One batch of the stylizer's path, host to host: decode to working size, runner, encode."""

    def __init__(self, device: str, side: int, batch: int) -> None:
        self.decoder, _ = open_decoder(device)
        self.jpegs = photos(batch, side * 135 // 128)
        self.side = side
        self.height, self.width = pillow_working(self.jpegs[0], side).shape[:2]
        precision = "fp16" if device == "cuda" else "fp32"
        self.runner = TorchRunner(load("quality"), device, precision, compiled=device == "cuda")
        for count in _pieces(self.runner, batch, side):
            self.runner.compile_now(count, self.height, self.width)
        self.pool = ThreadPoolExecutor(os.cpu_count() or 1)

    def batch(self, _: object = None) -> dict[str, float]:
        """Seconds spent in each stage."""
        begun = time.perf_counter()
        if self.decoder is not None:
            arrays = [self.decoder(jpeg, self.width, self.height) for jpeg in self.jpegs]
        else:
            arrays = list(self.pool.map(functools.partial(pillow_working, side=self.side), self.jpegs))
        decoded = time.perf_counter()
        outputs = self.runner(np.stack(arrays))
        inferred = time.perf_counter()
        list(self.pool.map(stored, outputs))
        return {"decode": decoded - begun, "runner": inferred - decoded, "encode": time.perf_counter() - inferred}

    def batches(self, flights: ThreadPoolExecutor, count: int, stages: list[dict[str, float]]) -> None:
        stages.extend(flights.map(self.batch, range(count)))


def pipeline_rows(report: Report, device: str, side: int = 1024, batch: int = 8) -> None:
    """Section 0, last part: the stylizer's batch path without Kafka and S3, quality network: 1080 px
    JPEG originals decoded to working size (nvJPEG where the pool has it, else Pillow, a thread per
    image), the runner (compiled on CUDA), each result encoded as the TIFF the exporter reads (a thread
    per image); one batch at a time, then two in flight as the pool runs them on CUDA. The stage
    medians show what bounds it (with two in flight they include waiting for the other batch: the
    runner runs one at a time, and the codec threads are shared)."""
    with section(report, "service pipeline", needs=60 if device == "cuda" else 15) as go:
        if not go:
            return
        path = StylizerPath(device, side, batch)
        path.batch()  # Warm-up.
        for in_flight in (1, 2):
            stages: list[dict[str, float]] = []
            with ThreadPoolExecutor(in_flight) as flights:
                times = timings(functools.partial(path.batches, flights, 4, stages), no_sync, seconds=3.0, least=3)
            per_image = statistics.median(times) / (4 * batch)
            report.add("service pipeline", {
                "decoder": "nvjpeg" if path.decoder is not None else "pillow",
                "batch": batch,
                "in_flight": in_flight,
                "ms_per_image": round(per_image * 1e3, 2),
                "working_mp_per_s": round(path.width * path.height / 1e6 / per_image, 1),
                **{f"{stage}_ms_per_batch": round(statistics.median(row[stage] for row in stages) * 1e3, 1)
                   for stage in stages[0]},
            })  # fmt: skip
        path.pool.shutdown()


def profile_rows(report: Report, side: int, device: str, batch: int = 8, top: int = 12) -> None:
    """Section 0, what bounds it: where the stylizer's runner spends the time of a batch of `batch`
    quality images, uint8 host arrays in and out (CUDA: FP16 compiled, its copies included; CPU: FP32
    eager), by torch.profiler: the `top` kernels (operators, on CPU) by time with their share, then
    the shares of convolutions (cuDNN, oneDNN) and of the rest (inductor's fused normalisation,
    activation and padding; the copies)."""
    with section(report, "profile", needs=60 if device == "cuda" else 10) as go:
        if not go:
            return
        from torch.profiler import ProfilerActivity, profile

        cuda = device == "cuda"
        torch._dynamo.reset()
        run = TorchRunner(load("quality"), device, "fp16" if cuda else "fp32", compiled=cuda)
        for count in _pieces(run, batch, side):
            run.compile_now(count, side, side)
        pixels = np.random.default_rng(5).integers(0, 256, (batch, side, side, 3), dtype=np.uint8)
        rounds = 5
        for _ in range(2):
            run(pixels)
        with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as profiler:
            for _ in range(rounds):
                run(pixels)
        spent = {event.key: (event.self_device_time_total if cuda else event.self_cpu_time_total, event.count)
                 for event in profiler.key_averages()}  # fmt: skip
        spent = {key: value for key, value in spent.items() if value[0] > 0}
        total = sum(time_us for time_us, _ in spent.values())
        network = f"quality {'fp16 compiled' if cuda else 'fp32 eager'}, batch {batch}"
        convolution = sum(time_us for key, (time_us, _) in spent.items() if _is_convolution(key))
        ranked = sorted(spent.items(), key=lambda item: -item[1][0])[:top]
        rows = [(key, time_us, round(count / rounds, 1)) for key, (time_us, count) in ranked]
        rows += [("all convolution kernels", convolution, ""), ("all other kernels", total - convolution, "")]
        for kernel, time_us, calls in rows:
            report.add("profile", {
                "network": network,
                "kernel": kernel[:100],
                "calls_per_batch": calls,
                "ms_per_batch": round(time_us / 1e3 / rounds, 3),
                "share": f"{time_us / total:.1%}" if total else "",
            })  # fmt: skip


def _is_convolution(kernel: str) -> bool:
    """A convolution kernel by its name: cuDNN's and CUTLASS's (implicit GEMM, fprop, Winograd) or an
    aten convolution op on CPU."""
    name = kernel.lower()
    return "triton" not in name and any(
        word in name for word in ("conv", "fprop", "implicit", "gemm", "xmma", "winograd", "cudnn", "cutlass")
    )


def psnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    mse = float(((reference.astype(np.float64) - candidate.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def compile_buckets(
    report: Report, run: TorchRunner, name: str, side: int, batches: tuple[int, ...]
) -> tuple[float, float]:
    """Compile every shape the batches run in; then time a new shape's first call (served eager while
    it compiles in the background) and how long until it was compiled."""
    for count in sorted({size for batch in batches for size in _pieces(run, batch, side)}):
        run.compile_now(count, side, side)
    begun = time.perf_counter()
    run(np.zeros((1, side * 3 // 4, side, 3), dtype=np.uint8))
    first_call_s = round(time.perf_counter() - begun, 2)
    while len(run.ready) < len(run._started) and not run.compile_errors and time.perf_counter() - begun < 120:
        time.sleep(0.2)
    if run.compile_errors:
        report.note(f"service {name}: compile errors: {run.compile_errors}")
    return first_call_s, round(time.perf_counter() - begun, 1)


def _pieces(run: TorchRunner, batch: int, side: int) -> list[int]:
    """The power-of-two passes a compiled runner splits a batch into."""
    return powers_of_two(batch, largest_batch(run.network.architecture, side, side))


def latency_rows(report: Report, side: int) -> None:
    """Section 2: batch-1 latency of the quality network, input already on the GPU."""
    for precision in ("fp16", "bf16"):
        for mode in ("eager", "cuda graph", "compiled", "compiled reduce-overhead"):
            with section(report, f"latency quality {precision} {mode}", needs=40 if "compiled" in mode else 10) as go:
                if not go:
                    continue
                network = on_device(load("quality"), "cuda", DTYPES[precision])
                x = torch.rand(1, 3, side, side, device="cuda", dtype=DTYPES[precision])
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    run = runner(network, mode, x)
                    times = timings(lambda: run(x), cuda_sync, seconds=2.0, least=200)  # noqa: B023
                report.add(
                    "latency",
                    {
                        "tier": "quality",
                        "precision": precision,
                        "mode": mode,
                        "calls": len(times),
                        "p50_ms": round(percentile(times, 0.5) * 1e3, 3),
                        "p99_ms": round(percentile(times, 0.99) * 1e3, 3),
                    },
                )


class JpegPath:
    """JPEG bytes in, stylized JPEG bytes out, in batches; codec on the GPU (nvJPEG) or CPU (Pillow)."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype, codec: str) -> None:
        self.network = network
        self.dtype = dtype
        self.codec = codec
        self.pool = ThreadPoolExecutor(os.cpu_count() or 1)

    def decode(self, jpegs: list[bytes]) -> torch.Tensor:
        """NCHW uint8 on the GPU."""
        if self.codec == "gpu":
            from torchvision.io import decode_jpeg

            data = [torch.frombuffer(jpeg, dtype=torch.uint8) for jpeg in jpegs]
            return torch.stack(decode_jpeg(data, device="cuda"))
        arrays = list(self.pool.map(lambda jpeg: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), jpegs))
        host = torch.from_numpy(np.stack(arrays)).pin_memory()
        return host.to("cuda", non_blocking=True).permute(0, 3, 1, 2)

    def encode(self, images: torch.Tensor) -> list[bytes]:
        if self.codec == "gpu":
            from torchvision.io import encode_jpeg

            return [bytes(data.cpu().numpy()) for data in encode_jpeg(list(images), quality=90)]
        host = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return list(self.pool.map(pillow_jpeg, host))

    def __call__(self, jpegs: list[bytes]) -> list[bytes]:
        pixels = self.decode(jpegs)
        x = pixels.to(self.dtype).div_(255.0).contiguous(memory_format=torch.channels_last)
        y = self.network(x)
        return self.encode(y.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).contiguous())


def pillow_jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jpeg_rows(report: Report, side: int, batch: int) -> None:
    """Section 3: JPEG-to-JPEG throughput, and decode and encode alone, GPU codec vs CPU codec."""
    jpegs = photos(2 * batch, side)
    megapixels = len(jpegs) * side * side / 1e6
    for codec in ("gpu", "cpu"):
        with section(report, f"jpeg {codec} codec", needs=40) as go:
            if not go:
                continue
            network = on_device(load("quality"), "cuda", torch.float16)
            sample = torch.rand(batch, 3, side, side, device="cuda", dtype=torch.float16)
            with torch.inference_mode():
                compiled = runner(network, "compiled", sample.contiguous(memory_format=torch.channels_last))
                path = JpegPath(compiled, torch.float16, codec)
                chunks = [jpegs[start : start + batch] for start in range(0, len(jpegs), batch)]
                whole = timings(lambda: [path(chunk) for chunk in chunks], cuda_sync, seconds=2.0, least=3)  # noqa: B023
                decode = timings(lambda: [path.decode(chunk) for chunk in chunks], cuda_sync, seconds=1.0)  # noqa: B023
                pixels = path.decode(chunks[0])
                encode = timings(lambda: path.encode(pixels), cuda_sync, seconds=1.0)  # noqa: B023
            for stage, times, pixels_done in (
                ("jpeg to jpeg (quality fp16, compiled)", whole, megapixels),
                ("decode", decode, megapixels),
                ("encode", encode, batch * side * side / 1e6),
            ):
                report.add(
                    "jpeg",
                    {
                        "codec": codec,
                        "stage": stage,
                        "batch": batch,
                        "mp_per_s": round(pixels_done / statistics.median(times), 1),
                    },
                )
            path.pool.shutdown()


def onnx_rows(report: Report, side: int) -> None:
    """Section 4: ONNX Runtime's GPU providers on the same networks, inputs bound on the device."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    for provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        if provider not in available:
            report.note(f"onnxruntime {provider}: not available here ({', '.join(available)})")
            continue
        for precision in ("fp32", "fp16"):
            with section(
                report, f"onnxruntime {provider} {precision}", needs=90 if "Tensorrt" in provider else 20
            ) as go:
                if go:
                    onnx_row(report, provider, precision, side)


def onnx_row(report: Report, provider: str, precision: str, side: int) -> None:
    import onnxruntime

    dtype = DTYPES[precision]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "quality.onnx"
        network = on_device(load("quality"), "cuda", dtype)
        sample = torch.rand(1, 3, 64, 64, device="cuda", dtype=dtype)
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(
            network, (sample,), str(path), input_names=["image"], output_names=["stylized"],
            dynamic_axes={"image": axes, "stylized": axes}, opset_version=17, dynamo=False,
        )  # fmt: skip
        options: dict[str, Any] = {"trt_fp16_enable": precision == "fp16"} if "Tensorrt" in provider else {}
        session = onnxruntime.InferenceSession(str(path), providers=[(provider, options), "CPUExecutionProvider"])
    if session.get_providers()[0] != provider:
        raise RuntimeError(f"session fell back to {session.get_providers()}")
    for batch in (1, 8):
        x = torch.rand(batch, 3, side, side, device="cuda", dtype=dtype).contiguous()
        y = torch.empty_like(x)
        binding = session.io_binding()
        element = np.float16 if precision == "fp16" else np.float32
        binding.bind_input("image", "cuda", 0, element, tuple(x.shape), x.data_ptr())
        binding.bind_output("stylized", "cuda", 0, element, tuple(y.shape), y.data_ptr())
        begun = time.perf_counter()
        session.run_with_iobinding(binding)
        setup = time.perf_counter() - begun
        times = timings(lambda: session.run_with_iobinding(binding), cuda_sync, seconds=1.0)  # noqa: B023
        median = statistics.median(times)
        report.add(
            "onnxruntime",
            {
                "provider": provider,
                "precision": precision,
                "batch": batch,
                "ms": round(median * 1e3, 3),
                "mp_per_s": round(batch * side * side / 1e6 / median, 1),
                "first_run_s": round(setup, 1),
            },
        )


def cpu_rows(report: Report, side: int) -> None:
    """Section 5: the networks on the CPU (all cores) and Pillow's codec: the baseline."""
    precisions = ["fp32"] + (["bf16"] if cpu_has_bf16() else [])
    if "bf16" not in precisions:
        report.note(
            "cpu bf16: skipped, this CPU reports neither AVX-512 BF16 nor AMX (PyTorch BF16 is very slow there)"
        )
    for tier in ("quality", "fast"):
        for precision in precisions:
            with section(report, f"cpu {tier} {precision}", needs=10) as go:
                if not go:
                    continue
                network = on_device(load(tier), "cpu", DTYPES[precision])
                x = torch.rand(1, 3, side, side, dtype=DTYPES[precision])
                with torch.inference_mode():
                    times = timings(lambda: network(x), no_sync, seconds=3.0, least=3)  # noqa: B023
                median = statistics.median(times)
                row = {"tier": tier, "precision": precision, "batch": 1, "threads": torch.get_num_threads()}
                report.add(
                    "cpu", {**row, "ms": round(median * 1e3, 1), "mp_per_s": round(side * side / 1e6 / median, 2)}
                )
    with section(report, "cpu codec", needs=5) as go:
        if go:
            jpegs = photos(8, side)
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:

                def decode_all() -> list[np.ndarray]:
                    return list(pool.map(lambda jpeg: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), jpegs))

                arrays = decode_all()
                decode = timings(decode_all, no_sync, seconds=1.0)
                encode = timings(lambda: list(pool.map(pillow_jpeg, arrays)), no_sync, seconds=1.0)
            megapixels = len(jpegs) * side * side / 1e6
            for stage, times in (("decode", decode), ("encode", encode)):
                report.add("cpu", {"tier": "pillow", "precision": stage, "batch": len(jpegs), "threads": os.cpu_count(),
                                   "ms": round(statistics.median(times) * 1e3, 1),
                                   "mp_per_s": round(megapixels / statistics.median(times), 1)})  # fmt: skip


def markdown(payload: dict[str, Any], elapsed: float) -> str:
    info = payload["machine"]
    lines = [
        f"# GPU benchmark: {info['gpu'] or 'no GPU (short mode: CPU rows only)'}",
        "",
        f"Run {info['date']} in {elapsed:.0f} s by `make bench-gpu` (bench/gpu.py). Machine: {info['cpu']}, "
        f"{info['cores']} cores; Python {info['python']}, torch {info['torch']} (CUDA {info['cuda']}), "
        f"torchvision {info['torchvision']}, onnxruntime {info['onnxruntime']}, triton {info['triton']}.",
        "",
        f"Inputs are {info['size']}x{info['size']} ({info['size'] ** 2 / 1e6:.2f} MP) unless stated; networks are the shipped tiles-quality and tiles-fast "
        "models; FP32 convolutions use TF32 (PyTorch's default); floor_ms is the convolutions' FLOPs at the "
        "datasheet's dense tensor-core peak. Medians of at least five timed calls after two warm-up calls.",
        "",
    ]
    if info.get("quick"):
        lines += ["**A quick run (--quick): each row timed for a twentieth of its time. Not a measurement.**", ""]
    for name, rows in payload["sections"].items():
        columns = list(rows[0])
        lines += [f"## {name}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(row.get(column, "")) for column in columns) + " |" for row in rows]
        lines.append("")
    if payload["notes"]:
        lines += ["## Notes", "", *(f"- {note}" for note in payload["notes"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="square side in pixels (1024: about 1 MP)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds of work before sections are skipped")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--only", choices=["service"], help="run one section (a short rerun on a GPU)")
    parser.add_argument("--quick", action="store_true", help="time each row briefly (checks the wiring, not speed)")
    args = parser.parse_args(argv)
    global TIMING_SHARE
    TIMING_SHARE = 0.05 if args.quick else 1.0
    torch.backends.cudnn.benchmark = True
    report = Report(args.out, args.budget)
    report.info["size"] = args.size
    report.info["quick"] = args.quick
    print(json.dumps(report.info), flush=True)
    if torch.cuda.is_available():
        service_rows(report, args.size, "cuda")
        decode_rows(report, "cuda", side=args.size)
        pipeline_rows(report, "cuda", side=args.size)
        profile_rows(report, args.size, "cuda")
    if torch.cuda.is_available() and args.only != "service":
        network_rows(report, args.size, FIRST)
        latency_rows(report, args.size)
        jpeg_rows(report, args.size, batch=8)
        cpu_rows(report, args.size)
        if report.info["onnxruntime"]:
            onnx_rows(report, args.size)
        network_rows(report, args.size, REST)
    if not torch.cuda.is_available():
        report.note("CUDA rows skipped: PyTorch sees no CUDA device (short mode, CPU rows only)")
        service_rows(report, args.size, "cpu")
        decode_rows(report, "cpu", side=args.size)
        pipeline_rows(report, "cpu", side=args.size, batch=2)
        profile_rows(report, args.size, "cpu", batch=2)
        cpu_rows(report, args.size)
    print(f"wrote {report.write()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
