"""make bench-models: style networks per tier, precision, size and batch, side by side in one run.

For each tier (quality; fast as deployed: the fast network at half the requested side, upscaled
back), precision (PyTorch FP32 and BF16; ONNX Runtime FP32; INT8 with every convolution
quantised, for speed; INT8 as the gate-guided quantiser chooses it; FP16/BF16 on CUDA when a GPU
is present), size (256, 512, 1024 px squares) and batch (1, 8): the median latency per batch,
throughput in megapixels per second, and PSNR of the output against the same tier's FP32 output.
The naive baseline is the quality network in PyTorch eager FP32 at batch 1. Results go to
bench/results/models-<machine>.{md,json}.

Models: the shipped defaults (tools/workshop/atelier_workshop/default_models), so the
numbers are those of what `make run` serves.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from torch.nn import functional

from atelier_stylizer.artifacts import export_onnx, load_network, read_manifest
from atelier_workshop.defaults import DEFAULT_MODELS
from atelier_workshop.quantization import load_images, psnr, quantize_graph, quantize_int8
from bench.common import REPO, SHARED_CONTENT, machine, result_stem

SIZES = (256, 512, 1024)
BATCHES = (1, 8)


def inputs(size: int, batch: int) -> np.ndarray:
    """Real photos (from ../shared) resized to size x size, repeated to the batch."""
    paths = sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else []
    if paths:
        images = [image[:, :, :size, :size] for image in load_images(paths, size)]
        images = [
            np.pad(image, ((0, 0), (0, 0), (0, size - image.shape[2]), (0, size - image.shape[3])), mode="symmetric")
            for image in images
        ]
    else:
        rng = np.random.default_rng(0)
        images = [rng.random((1, 3, size, size), dtype=np.float32)]
    return np.concatenate([images[index % len(images)] for index in range(batch)]).astype(np.float32)


def timed(run: Any, repeats: int) -> tuple[float, np.ndarray]:
    output = run()  # Warm-up (and the output for PSNR).
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), output


def torch_runner(network: torch.nn.Module, batch: np.ndarray, dtype: torch.dtype, device: str, scale: float) -> Any:
    model = copy.deepcopy(network).to(device, dtype).eval()  # Module.to converts in place: each runner its own copy.
    x = torch.from_numpy(batch).to(device)

    def run() -> np.ndarray:
        with torch.inference_mode():
            inp = x if scale == 1 else functional.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True)
            y = model(inp.to(dtype)).float()
            if scale != 1:
                y = functional.interpolate(y, size=x.shape[-2:], mode="bilinear")
            if device == "cuda":
                torch.cuda.synchronize()
            return y.clamp(0, 1).cpu().numpy()

    return run


def ort_runner(path: Path, batch: np.ndarray, scale: float) -> Any:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.from_numpy(batch)

    def run() -> np.ndarray:
        inp = x if scale == 1 else functional.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True)
        y = torch.from_numpy(session.run(None, {"image": inp.numpy()})[0])
        if scale != 1:
            y = functional.interpolate(y, size=x.shape[-2:], mode="bilinear")
        return y.clamp(0, 1).numpy()

    return run


def prepare(style: str, work: Path) -> tuple[dict[str, Any], dict[str, dict[str, Path]], dict[str, Any]]:
    """Per tier: the shipped network, its FP32 and INT8 graphs (every convolution; gate-guided), the gate's record."""
    networks = {}
    graphs: dict[str, dict[str, Path]] = {}
    calibration = load_images(sorted((REPO / ".atelier" / "make-models" / "content").glob("*.png"))[:4], 256) or [
        inputs(256, 1)
    ]
    evaluation = list(np.split(inputs(256, 3), 3))  # Every photo: the gate must hold on each, not on one.
    gate_records = {}
    for tier in ("quality", "fast"):
        folder = DEFAULT_MODELS / f"{style}-{tier}" / "1"
        networks[tier] = load_network(folder, read_manifest(folder))
        fp32 = work / f"{tier}.onnx"
        export_onnx(networks[tier], fp32)
        graphs[tier] = {
            "fp32": fp32,
            "int8-all": work / f"{tier}.int8-all.onnx",
            "int8-gated": work / f"{tier}.int8-gated.onnx",
        }
        quantize_graph(fp32, graphs[tier]["int8-all"], calibration)  # Every convolution: the speed reference.
        gate_records[tier] = quantize_int8(fp32, graphs[tier]["int8-gated"], calibration, evaluation).record()
        print(tier, "int8 gate:", gate_records[tier], flush=True)
    return networks, graphs, gate_records


def variants(
    network: Any, graph: dict[str, Path], batch: np.ndarray, scale: float
) -> list[tuple[str, Callable[[], Any]]]:
    """Every backend and precision to measure, as runner factories (runners are made one at a time: a
    session's memory arena goes with it before the next; all of them alive at 1024 px, batch 8, exhausted 24 GB)."""
    made: list[tuple[str, Callable[[], Any]]] = [
        ("torch-cpu-fp32", partial(torch_runner, network, batch, torch.float32, "cpu", scale)),
        ("torch-cpu-bf16", partial(torch_runner, network, batch, torch.bfloat16, "cpu", scale)),
        ("onnxruntime-cpu-fp32", partial(ort_runner, graph["fp32"], batch, scale)),
        ("onnxruntime-cpu-int8-all", partial(ort_runner, graph["int8-all"], batch, scale)),
        ("onnxruntime-cpu-int8-gated", partial(ort_runner, graph["int8-gated"], batch, scale)),
    ]
    if torch.cuda.is_available():
        made += [
            ("torch-cuda-fp32", partial(torch_runner, network, batch, torch.float32, "cuda", scale)),
            ("torch-cuda-fp16", partial(torch_runner, network, batch, torch.float16, "cuda", scale)),
            ("torch-cuda-bf16", partial(torch_runner, network, batch, torch.bfloat16, "cuda", scale)),
        ]
    return made


def measure(networks: dict[str, Any], graphs: dict[str, dict[str, Path]], repeats: int) -> list[dict[str, Any]]:
    """A row per tier, backend, size and batch: median latency, throughput, PSNR against the first backend."""
    rows: list[dict[str, Any]] = []
    for size in SIZES:
        for batch_size in BATCHES:
            batch = inputs(size, batch_size)
            tries = repeats if size * size * batch_size <= 512 * 512 * 8 else max(1, repeats - 1)
            for tier in ("quality", "fast"):
                reference: np.ndarray | None = None
                scale = 1.0 if tier == "quality" else 0.5
                for name, make_runner in variants(networks[tier], graphs[tier], batch, scale):
                    median, output = timed(make_runner(), tries)
                    reference = output if reference is None else reference
                    row = {
                        "tier": tier,
                        "backend": name,
                        "size": size,
                        "batch": batch_size,
                        "median_ms": round(median, 2),
                        "mp_per_s": round(batch_size * size * size / 1e6 / (median / 1000), 3),
                        "psnr_db": round(min(psnr(reference[i], output[i]) for i in range(batch_size)), 2),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--style", default="tiles")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    info = machine()
    print(json.dumps(info), flush=True)
    networks, graphs, gate_records = prepare(args.style, Path(tempfile.mkdtemp(prefix="bench-models-")))
    rows = measure(networks, graphs, args.repeats)
    baseline = {
        (r["size"], r["batch"]): r["median_ms"]
        for r in rows
        if r["tier"] == "quality" and r["backend"] == "torch-cpu-fp32"
    }
    for row in rows:
        row["speedup_vs_baseline"] = round(baseline[(row["size"], 1)] * row["batch"] / row["median_ms"], 2)
    write(info, rows, gate_records)


def write(info: dict[str, Any], rows: list[dict[str, Any]], gate: dict[str, Any]) -> None:
    stem = result_stem("models", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "rows": rows, "int8_gate": gate}, indent=2))

    def find(tier: str, backend: str, size: int, batch: int) -> dict[str, Any]:
        return next(r for r in rows if (r["tier"], r["backend"], r["size"], r["batch"]) == (tier, backend, size, batch))

    base = find("quality", "torch-cpu-fp32", 512, 1)
    fast = find("fast", "torch-cpu-fp32", 512, 1)
    ort32 = find("quality", "onnxruntime-cpu-fp32", 512, 1)
    int8_all = find("quality", "onnxruntime-cpu-int8-all", 512, 1)
    int8_gated = find("quality", "onnxruntime-cpu-int8-gated", 512, 1)
    lines = [
        f"# Style models benchmark ({info['date']})",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}, torch {info['torch']}, "
        f"onnxruntime {info['onnxruntime']}. Hardware id `{info['hardware_id']}`. Produced by `make bench-models`.",
        "",
        "## Targets at 512 px (batch 1)",
        "",
        f"- Fast tier vs naive baseline (quality, PyTorch eager FP32, batch 1): {base['median_ms']:.0f} ms vs "
        f"{fast['median_ms']:.0f} ms = **{base['median_ms'] / fast['median_ms']:.1f}x** (target 6x).",
        f"- INT8, every convolution, vs FP32 ONNX Runtime (quality): {ort32['median_ms']:.0f} ms vs {int8_all['median_ms']:.0f} ms = "
        f"**{ort32['median_ms'] / int8_all['median_ms']:.2f}x**, but PSNR {int8_all['psnr_db']} dB (gate 35 dB).",
        f"- INT8 as the gate-guided quantiser chooses it (quality): {int8_gated['median_ms']:.0f} ms = "
        f"**{ort32['median_ms'] / int8_gated['median_ms']:.2f}x** at PSNR {int8_gated['psnr_db']} dB; adopted: "
        f"{gate['quality']['adopted']} (quantised {len(gate['quality']['quantized'])} of {gate['quality']['convolutions']} convolutions).",
        "",
        "## All measurements",
        "",
        "| tier | backend | size | batch | median ms | MP/s | PSNR vs FP32 (dB) | x baseline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['tier']} | {r['backend']} | {r['size']} | {r['batch']} | {r['median_ms']} | {r['mp_per_s']} | "
            f"{r['psnr_db']} | {r['speedup_vs_baseline']} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md and .json", file=sys.stderr)


if __name__ == "__main__":
    main()
