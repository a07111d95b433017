"""Which precision a model runs at on this hardware: what the workshop measured and recorded.

The model workshop (atelier_workshop.quantization) measures INT8 against FP32 per hardware and
records the outcome in the manifest; serving reads that record here.
"""

import platform
from pathlib import Path

import torch

from atelier_stylizer.registry import ONNX_INT8, ModelManifest

_CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def hardware_id() -> str:
    """What precision measurements are valid for: the GPU's name, or the CPU's relevant features."""
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name()}"
    flags = cpu_flags()
    return "cpu:" + "+".join([platform.machine(), *(feature for feature in _CPU_FEATURES if feature in flags)])


def cpu_flags() -> set[str]:
    """The instruction-set flags the running CPU reports (Linux); empty where it reports none."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_reports_bf16() -> bool:
    """Whether this CPU has BF16 arithmetic (AVX-512 BF16 or AMX): elsewhere PyTorch emulates it, slowly."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def int8_adopted(manifest: ModelManifest, hardware: str) -> bool:
    """Whether INT8 was measured faster and within the gate on this hardware."""
    record = manifest.precision.get("int8", {}).get(hardware, {})
    return bool(record.get("adopted")) and ONNX_INT8 in manifest.files
