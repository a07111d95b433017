"""INT8 through ONNX Runtime static quantization, adopted only where it is faster and close enough.

Instance normalisation divides every channel by its own spread, which amplifies quantisation
noise: quantising any single convolution of these networks already costs 26 to 46 dB PSNR
against FP32 (measured here), and quantising all of them lands near 20 dB. So the quantiser is
sensitivity-guided: it measures each convolution's PSNR when quantised alone, then adds
convolutions least sensitive first while the whole graph stays at or above the gate (35 dB against
the FP32 output, on images held out from calibration). The INT8 graph is adopted for a hardware
only if it also measures faster than FP32 ONNX Runtime there; the record of both measurements is
kept in the manifest per hardware.
"""

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from atelier_shared import sha256_hex
from atelier_stylizer.artifacts import export_onnx, load_network, read_manifest
from atelier_stylizer.precision import hardware_id
from atelier_stylizer.registry import MANIFEST, ONNX, ONNX_INT8, ModelManifest

PSNR_GATE_DB = 35.0


def psnr(reference: np.ndarray, candidate: np.ndarray) -> float:
    """PSNR in dB between two outputs in 0..1, compared as 8-bit images."""
    first = np.round(np.clip(reference, 0, 1) * 255)
    second = np.round(np.clip(candidate, 0, 1) * 255)
    mse = float(((first - second) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def load_images(paths: list[Path], side: int) -> list[np.ndarray]:
    """Images as 1x3xHxW float arrays, longest side `side`, sides multiples of 4."""
    arrays = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        scale = side / max(image.size)
        size = (max(4, round(image.width * scale / 4) * 4), max(4, round(image.height * scale / 4) * 4))
        image = image.resize(size, Image.Resampling.LANCZOS)
        arrays.append(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None].copy() / 255.0)
    return arrays


class CalibrationImages(CalibrationDataReader):  # type: ignore[misc]
    """Feeds calibration images to ONNX Runtime's quantiser."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self._items = iter([{"image": image} for image in images])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: onnxruntime.InferenceSession, images: list[np.ndarray]) -> list[np.ndarray]:
    return [session.run(None, {"image": image})[0] for image in images]


def _quantize(prepared: Path, target: Path, calibration: list[np.ndarray], nodes: list[str] | None) -> None:
    quantize_static(
        str(prepared),
        str(target),
        CalibrationImages(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=nodes,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": 99.999},
    )


def quantize_graph(fp32: Path, target: Path, calibration: list[np.ndarray], nodes: list[str] | None = None) -> None:
    """Quantise an FP32 graph to INT8: the given convolutions, or every one (None)."""
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        _quantize(prepared, target, calibration, nodes)


@dataclass(frozen=True)
class Int8Result:
    """What the quantiser chose and measured on one hardware."""

    hardware: str
    quantized: list[str]
    convolutions: int
    psnr_db: float
    fp32_ms: float
    int8_ms: float
    adopted: bool

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms if self.int8_ms else 0.0

    def record(self) -> dict[str, object]:
        """The manifest's record of this measurement."""
        return {**asdict(self), "speedup": round(self.speedup, 3), "gate_db": PSNR_GATE_DB}


def median_ms(session: onnxruntime.InferenceSession, image: np.ndarray, repeats: int) -> float:
    """Median wall time of one inference, after a warm-up."""
    session.run(None, {"image": image})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {"image": image})
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def quantize_int8(
    fp32: Path,
    target: Path,
    calibration: list[np.ndarray],
    evaluation: list[np.ndarray],
    gate_db: float = PSNR_GATE_DB,
    margin_db: float = 0.5,
    repeats: int = 5,
) -> Int8Result:
    """Sensitivity-guided mixed-precision INT8 of an FP32 ONNX graph, written to `target`."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        prepared = work / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        convolutions = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        reference = _run(_session(fp32), evaluation)

        def graph_psnr(nodes: list[str]) -> float:
            candidate = work / "candidate.onnx"
            _quantize(prepared, candidate, calibration, nodes)
            outputs = _run(_session(candidate), evaluation)
            return min(psnr(ref, out) for ref, out in zip(reference, outputs, strict=True))

        sensitivity = {node: graph_psnr([node]) for node in convolutions}
        chosen: list[str] = []
        for node in sorted(convolutions, key=lambda name: -sensitivity[name]):
            if sensitivity[node] < gate_db + margin_db:
                break
            if graph_psnr([*chosen, node]) >= gate_db + margin_db:
                chosen.append(node)
        if chosen:
            _quantize(prepared, target, calibration, chosen)
            achieved = min(psnr(r, o) for r, o in zip(reference, _run(_session(target), evaluation), strict=True))
        else:
            shutil.copyfile(fp32, target)
            achieved = float("inf")
    probe = evaluation[0]
    fp32_ms = median_ms(_session(fp32), probe, repeats)
    int8_ms = median_ms(_session(target), probe, repeats)
    return Int8Result(
        hardware=hardware_id(),
        quantized=chosen,
        convolutions=len(convolutions),
        psnr_db=round(float(achieved), 2) if np.isfinite(achieved) else 99.0,
        fp32_ms=round(fp32_ms, 2),
        int8_ms=round(int8_ms, 2),
        adopted=bool(chosen) and achieved >= gate_db and int8_ms < fp32_ms,
    )


def add_int8(folder: Path, calibration: list[np.ndarray], evaluation: list[np.ndarray]) -> Int8Result:
    """Quantise an artifact in place: write model.int8.onnx and record the measurement in its manifest.

    Run it on an artifact before publishing it (published versions are immutable).
    """
    manifest = read_manifest(folder)
    if not (folder / ONNX).is_file():
        export_onnx(load_network(folder, manifest), folder / ONNX)
    result = quantize_int8(folder / ONNX, folder / ONNX_INT8, calibration, evaluation)
    files = {**manifest.files}
    for name in (ONNX, ONNX_INT8):
        files[name] = sha256_hex((folder / name).read_bytes())
    int8_records = {**manifest.precision.get("int8", {}), result.hardware: result.record()}
    updated = ModelManifest.model_validate(
        {**manifest.model_dump(), "files": files, "precision": {**manifest.precision, "int8": int8_records}}
    )
    (folder / MANIFEST).write_text(json.dumps(updated.model_dump(), indent=2))
    return result
