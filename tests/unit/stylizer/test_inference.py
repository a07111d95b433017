"""PyTorch and ONNX Runtime behind one interface agree on the same artifact."""

from pathlib import Path

import numpy as np
import pytest

from atelier_stylizer.inference import load_engine
from atelier_stylizer.registry import ONNX
from tests.models import make_model


def test_torch_and_onnxruntime_outputs_match_within_two_levels(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "quality", with_onnx=True)
    torch_engine = load_engine(tmp_path, manifest, backend="torch", device="cpu", precision="fp32")
    onnx_engine = load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="fp32")
    batch = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    first, second = torch_engine.run(batch), onnx_engine.run(batch)
    assert first.shape == second.shape == batch.shape
    levels = np.abs(np.round(first * 255) - np.round(second * 255)).max()
    assert levels <= 2, levels
    assert (torch_engine.backend, onnx_engine.backend) == ("torch-cpu-fp32", "onnxruntime-cpu-fp32")


def test_missing_onnx_graph_is_exported_once(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "fast", with_onnx=False)
    assert not (tmp_path / ONNX).exists()
    engine = load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="fp32")
    assert (tmp_path / ONNX).is_file()
    assert engine.run(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape == (1, 3, 32, 32)


def test_auto_precision_on_cpu_is_fp32_without_an_adopted_int8_graph(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "fast")
    assert load_engine(tmp_path, manifest, device="cpu").backend == "torch-cpu-fp32"
    with pytest.raises(ValueError, match="fp32 or int8"):
        load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="bf16")


def test_a_batch_past_32_bit_indexing_runs_in_equal_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: on CUDA a batch of 32 quality images at 1 MP raised "input tensor must fit into
    32-bit index math" in reflection padding (make bench-gpu on an H200, 2026-11-27). The engine now
    splits such a batch into equal passes, each within the limit, with the same output."""
    from atelier_stylizer import networks

    manifest = make_model(tmp_path, "tiles", "fast")
    engine = load_engine(tmp_path, manifest, backend="torch", device="cpu", precision="fp32")
    batch = np.random.default_rng(1).random((5, 3, 32, 32), dtype=np.float32)
    whole = engine.run(batch)
    architecture = engine._architecture  # type: ignore[attr-defined]
    small, medium, _ = architecture.channels
    per_image = max(medium * 34 * 34, small * 40 * 40)
    monkeypatch.setattr(networks, "_INDEX_LIMIT", 2 * per_image)
    assert networks.largest_batch(architecture, 32, 32) == 2
    calls: list[int] = []
    network = engine._network  # type: ignore[attr-defined]
    network.register_forward_hook(lambda _module, inputs, _output: calls.append(len(inputs[0])))
    assert np.allclose(engine.run(batch), whole, atol=1e-5)
    assert calls == [2, 2, 1]


def test_largest_batch_of_the_quality_network_at_one_megapixel_is_31() -> None:
    from atelier_stylizer.networks import FAST, QUALITY, largest_batch

    assert largest_batch(QUALITY, 1024, 1024) == 31
    assert largest_batch(FAST, 1024, 1024) == 63
    assert largest_batch(QUALITY, 8192, 8192) == 1
