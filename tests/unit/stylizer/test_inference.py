"""PyTorch and ONNX Runtime behind one interface agree on the same artifact; precision is chosen from
what the CPU reports and measures."""

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atelier_stylizer import inference, precision
from atelier_stylizer.inference import load_engine
from atelier_stylizer.registry import ONNX
from tests.models import make_model


def random_batch(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_torch_and_onnxruntime_outputs_match_within_two_levels(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "quality", with_onnx=True)
    torch_engine = load_engine(tmp_path, manifest, backend="torch", device="cpu", precision="fp32")
    onnx_engine = load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="fp32")
    batch = random_batch(2, 64, 96)
    first, second = torch_engine.run(batch), onnx_engine.run(batch)
    assert first.shape == second.shape == batch.shape and first.dtype == second.dtype == np.uint8
    assert np.abs(first.astype(int) - second.astype(int)).max() <= 2
    assert (torch_engine.backend, onnx_engine.backend) == ("torch-cpu-fp32", "onnxruntime-cpu-fp32")


def test_missing_onnx_graph_is_exported_once(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "fast", with_onnx=False)
    assert not (tmp_path / ONNX).exists()
    engine = load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="fp32")
    assert (tmp_path / ONNX).is_file()
    assert engine.run(np.zeros((1, 32, 32, 3), dtype=np.uint8)).shape == (1, 32, 32, 3)


def test_the_engines_refuse_float_or_planar_batches(tmp_path: Path) -> None:
    engine = load_engine(
        tmp_path, make_model(tmp_path, "tiles", "fast"), backend="torch", device="cpu", precision="fp32"
    )
    with pytest.raises(ValueError, match="uint8"):
        engine.run(np.zeros((1, 3, 32, 32), dtype=np.float32))


def test_auto_precision_on_a_cpu_without_bf16_is_fp32_and_probes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference, "cpu_reports_bf16", lambda: False)
    monkeypatch.setattr(inference, "TorchRunner", _no_probe(inference.TorchRunner))
    manifest = make_model(tmp_path, "tiles", "fast")
    assert load_engine(tmp_path, manifest, device="cpu").backend == "torch-cpu-fp32"
    with pytest.raises(ValueError, match="fp32 or int8"):
        load_engine(tmp_path, manifest, backend="onnxruntime", device="cpu", precision="bf16")


def _no_probe(runner: type) -> type:
    class Counted(runner):  # type: ignore[misc, valid-type]
        def __init__(self, network, device, chosen, compiled=False) -> None:  # type: ignore[no-untyped-def]
            assert chosen == "fp32", "a CPU without BF16 instructions was probed at BF16"
            super().__init__(network, device, chosen, compiled)

    return Counted


def test_auto_precision_on_a_bf16_cpu_follows_the_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BF16 is chosen only when measured faster and within the gate; the choice is what runs."""
    manifest = make_model(tmp_path, "tiles", "fast")
    monkeypatch.setattr(inference, "cpu_reports_bf16", lambda: True)
    outcomes = iter([("bf16", {"bf16_psnr_db": 45.0}), ("fp32", {"bf16_psnr_db": 30.0})])
    monkeypatch.setattr(inference, "cpu_float_precision", lambda network: next(outcomes))
    assert load_engine(tmp_path, manifest, device="cpu").backend == "torch-cpu-bf16"
    assert load_engine(tmp_path, manifest, device="cpu").backend == "torch-cpu-fp32"


def test_the_bf16_probe_measures_both_precisions_on_this_cpu(tmp_path: Path) -> None:
    manifest = make_model(tmp_path, "tiles", "fast")
    from atelier_stylizer.artifacts import load_network

    if not precision.cpu_reports_bf16():
        assert inference.cpu_float_precision(load_network(tmp_path, manifest), side=64) == ("fp32", {})
        return
    chosen, probe = inference.cpu_float_precision(load_network(tmp_path, manifest), side=64)
    assert probe["fp32_ms"] > 0 and probe["bf16_ms"] > 0 and probe["bf16_psnr_db"] > 20
    faster = probe["fp32_ms"] >= inference.BF16_MIN_SPEEDUP * probe["bf16_ms"]
    assert chosen == ("bf16" if faster and probe["bf16_psnr_db"] >= inference.BF16_GATE_DB else "fp32")


def test_the_probe_times_an_architecture_once_and_compares_every_models_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The styles of a pool share one architecture: timing BF16 against FP32 for each model made each
    style's load cost 0.3-0.8 s on 2 cores, where comparing its outputs takes two runs."""
    from atelier_stylizer.artifacts import load_network

    monkeypatch.setattr(inference, "cpu_reports_bf16", lambda: True)
    monkeypatch.setattr(inference, "_PROBE_SECONDS", {})
    runs: list[str] = []
    original = inference.TorchRunner.__call__

    def counted(self: inference.TorchRunner, batch: np.ndarray) -> np.ndarray:
        runs.append(str(self.dtype))
        return original(self, batch)

    monkeypatch.setattr(inference.TorchRunner, "__call__", counted)
    probes = []
    for style in ("tiles", "brush"):
        manifest = make_model(tmp_path / style, style, "fast")
        probes.append(inference.cpu_float_precision(load_network(tmp_path / style, manifest), side=32)[1])
        probes[-1]["runs"] = len(runs)
        runs.clear()
    # Warm-up and outputs, plus the timed pairs once.
    assert probes[0]["runs"] in range(2 + 2 * inference.PROBE_ROUNDS, 3 + 2 * inference.PROBE_MAX_ROUNDS, 2)
    assert probes[1]["runs"] == 2
    assert probes[0]["bf16_ms"] == probes[1]["bf16_ms"] and probes[1]["bf16_psnr_db"] > 20


class ScriptedRuns:
    """Runs that take scripted times on a clock of their own (seconds)."""

    def __init__(self, times: dict[str, list[float]]) -> None:
        self.now = 0.0
        self.times = {name: iter(values) for name, values in times.items()}
        self.rounds = 0

    def perf_counter(self) -> float:
        return self.now

    def run(self, name: str) -> Callable[[], None]:
        def advance() -> None:
            self.now += next(self.times[name])
            self.rounds += name == "fp32"

        return advance


@pytest.mark.parametrize(
    ("bf16_times", "rounds", "speedup"),
    [
        ([0.05] * 30, 7, 2.0),  # Clear at once: seven rounds.
        ([0.09] * 7 + [0.09, 0.05] + [0.05] * 30, 9, 2.0),  # Contended at first: timed on until clear.
        ([0.1] * 30, 21, 1.0),  # Never clear: stops at the bound, and what it read stands (refused).
    ],
    ids=["clear", "contended at first", "never clear"],
)
def test_the_probe_times_more_rounds_only_while_its_reading_is_close_to_the_threshold(
    monkeypatch: pytest.MonkeyPatch, bf16_times: list[float], rounds: int, speedup: float
) -> None:
    """Regression: a stylizer starting on a busy machine chose FP32 for a pool whose BF16 ran 1.6-1.7x
    faster in every other run: seven rounds' minimums can all fall in a busy moment."""
    script = ScriptedRuns({"fp32": [0.1] * 30, "bf16": bf16_times})
    monkeypatch.setattr(inference, "time", SimpleNamespace(perf_counter=script.perf_counter))
    fastest = inference.fastest_runs({name: script.run(name) for name in ("fp32", "bf16")})
    assert script.rounds == rounds
    assert fastest["fp32"] / fastest["bf16"] == pytest.approx(speedup)


def test_a_slow_probe_times_no_more_rounds_past_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a start during a full test run read the fast network at 872 ms a run, close to the
    threshold every round, and spent 36 s on 21 rounds."""
    script = ScriptedRuns({"fp32": [0.9] * 30, "bf16": [0.85] * 30})
    monkeypatch.setattr(inference, "time", SimpleNamespace(perf_counter=script.perf_counter))
    inference.fastest_runs({name: script.run(name) for name in ("fp32", "bf16")})
    assert script.rounds == inference.PROBE_ROUNDS  # 12 s spent by then: past PROBE_MAX_S.


def test_the_probe_runs_on_one_thread_and_leaves_every_threads_count_as_it_was() -> None:
    """The probe times one thread (what BF16 is worth per core), also in a thread new to PyTorch (which
    sets a thread's count on its first use there), without changing what any other thread runs on, nor
    its own afterwards."""
    import threading

    before = torch.get_num_threads()
    torch.set_num_threads(before)  # As STYLIZER_THREADS does: each new thread then takes this count on first use.
    seen: dict[str, int] = {}
    neighbour_may_look, neighbour_looked = threading.Event(), threading.Event()

    def neighbour() -> None:
        neighbour_may_look.wait(10)
        seen["beside"] = torch.get_num_threads()
        neighbour_looked.set()

    def probe() -> None:
        seen["inside"] = torch.get_num_threads()
        neighbour_may_look.set()
        neighbour_looked.wait(10)

    def loading() -> None:
        inference.on_one_thread(probe)
        seen["after"] = torch.get_num_threads()

    threads = [threading.Thread(target=neighbour), threading.Thread(target=loading)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"inside": 1, "beside": before, "after": before}
    assert torch.get_num_threads() == before


def test_a_batch_past_32_bit_indexing_runs_in_equal_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: on CUDA a batch of 32 quality images at 1 MP raised "input tensor must fit into
    32-bit index math" in reflection padding (make bench-gpu on an H200, 2026-11-27). The engine now
    splits such a batch into equal passes, each within the limit, with the same output."""
    from atelier_stylizer import networks

    manifest = make_model(tmp_path, "tiles", "fast")
    engine = load_engine(tmp_path, manifest, backend="torch", device="cpu", precision="fp32")
    batch = random_batch(5, 32, 32, seed=1)
    whole = engine.run(batch)
    runner = engine.runner  # type: ignore[attr-defined]
    architecture = runner.network.architecture
    small, medium, _ = architecture.channels
    per_image = max(medium * 34 * 34, small * 40 * 40)
    monkeypatch.setattr(networks, "_INDEX_LIMIT", 2 * per_image)
    assert networks.largest_batch(architecture, 32, 32) == 2
    calls: list[int] = []
    runner.network.register_forward_hook(lambda _module, inputs, _output: calls.append(len(inputs[0])))
    assert np.array_equal(engine.run(batch), whole)
    assert calls == [2, 2, 1]


def test_largest_batch_of_the_quality_network_at_one_megapixel_is_31() -> None:
    from atelier_stylizer.networks import FAST, QUALITY, largest_batch

    assert largest_batch(QUALITY, 1024, 1024) == 31
    assert largest_batch(FAST, 1024, 1024) == 63
    assert largest_batch(QUALITY, 8192, 8192) == 1


def test_a_compiled_runner_serves_a_new_shape_eager_while_it_compiles_in_the_background(tmp_path: Path) -> None:
    """On an H200, compiling with dynamic shapes ran no faster than eager and a new size still took
    36 s to recompile (bench/results/gpu-nvidia-h200.md). The runner compiles static shapes per
    bucket instead, each in the background on first sight: the first call at a new size is answered
    at once (eager), later ones compiled, with the same pixels within a level."""
    import time

    from atelier_stylizer.artifacts import load_network
    from atelier_stylizer.runner import TorchRunner

    manifest = make_model(tmp_path, "tiles", "fast")
    runner = TorchRunner(load_network(tmp_path, manifest), "cpu", "fp32", compiled=True)
    batch = random_batch(3, 40, 60)  # Buckets to 64x64, in passes of 2 and 1.
    begun = time.monotonic()
    first = runner(batch)
    assert runner.ready == set() and runner.compile_errors == []
    deadline = begun + 240
    while len(runner.ready) < 2 and not runner.compile_errors and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runner.ready == {(2, 3, 64, 64), (1, 3, 64, 64)}, runner.compile_errors
    assert np.abs(runner(batch).astype(int) - first.astype(int)).max() <= 1
