"""A style network on a PyTorch device: 8-bit images in, 8-bit images out.

Imports only PyTorch, NumPy and the network code, so `make bench-gpu` runs exactly this on a GPU
machine that has no project environment. Batches cross the host boundary as uint8 NHWC (a quarter of
float32's bytes); on CUDA they go through pinned host memory with non-blocking copies, and scaling,
precision and layout change on the device. Compiled, the network runs channels-last (NHWC memory
viewed as NCHW already is); eager, NCHW, which measured 1.25x channels-last for the quality network
at batch 8 on the H200 (bench/results/gpu-nvidia-h200-service.md).

On CUDA, batches called from several threads (the stylizer's batches in flight) overlap: a call's
host copies run outside the lock, its upload on a stream of its own while the batch before computes,
its download on another while the batch after does; only placing work on the device is serialised.
(Not yet measured on a GPU: `make bench-gpu` times the runner from one thread and from two.)

Inductor (torch.compile) fuses the instance normalisation and activations
around cuDNN's convolutions (3-4x eager at 1 MP on an H200, bench/results/gpu-nvidia-h200.md), but
only for static shapes: with dynamic shapes it measured no faster than eager and recompiled on a new
size anyway. So compiled shapes come in buckets (sides mirror-padded up to multiples of BUCKET, batches
split into powers of two), each compiled once in the background on first sight while that batch and
the next ones of its shape run eager, so a new size never waits for a compiler. The padding is part
of the compiled runner's result, eager or not (instance normalisation sees it: 29-35 dB against the
unpadded output on the test photos), as mirrored padding already is for ragged batches.
"""

import copy
import logging
import math
import threading
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional

from atelier_stylizer.networks import TransformerNet, largest_batch

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Compiled shapes: sides padded up to a multiple of this; a 1024 px working side gives at most 16
# heights for each width.
BUCKET = 64
# Compiled shapes kept per code object, in the whole process (every runner and model version shares
# TransformerNet.forward): a pool can meet about 31 buckets at four batch sizes per working side, and
# past the limit dynamo would silently run eager.
COMPILED_SHAPES = 512


class TorchRunner:
    """Runs batches (N, H, W, 3) uint8 through a network and returns them the same shape, clamped."""

    def __init__(
        self,
        network: TransformerNet,
        device: str,
        precision: str,
        compiled: bool = False,
        channels_last: bool | None = None,
    ) -> None:
        if precision not in DTYPES:
            raise ValueError(f"PyTorch runs fp32, fp16 or bf16, not {precision!r}")
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        self.compiled = compiled
        self._architecture = network.architecture
        self._cuda = self.device.type == "cuda"
        self._channels_last = (self._cuda and compiled) if channels_last is None else channels_last
        layout = torch.channels_last if self._channels_last else torch.contiguous_format
        # A copy: Module.to converts in place, and the caller's network may serve at another precision.
        module = copy.deepcopy(network).to(self.device, self.dtype).to(memory_format=layout).eval()  # type: ignore[call-overload]
        self.network: torch.nn.Module = module
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        if compiled:
            config = torch._dynamo.config
            config.recompile_limit = max(config.recompile_limit, COMPILED_SHAPES)
            config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 2 * COMPILED_SHAPES)
            self._compiled = torch.compile(module, dynamic=False)
        # Shapes compiled and ready, and those being compiled (or that failed to: they stay eager).
        self.ready: set[tuple[int, ...]] = set()
        self._started: set[tuple[int, ...]] = set()
        self.compile_errors: list[str] = []
        # Placing a batch's work on the device (all of it on CPU) is serialised; on CUDA the copies
        # of one batch overlap another's compute, on streams of their own.
        self._lock = threading.Lock()
        self._upload = torch.cuda.Stream(self.device) if self._cuda else None  # type: ignore[no-untyped-call]
        self._download = torch.cuda.Stream(self.device) if self._cuda else None  # type: ignore[no-untyped-call]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The batch in as few passes as 32-bit indexing allows (a batch of 32 quality images at 1 MP
        failed on the H200 in reflection padding; bench/results/gpu-nvidia-h200.md), and compiled, in
        passes of power-of-two sizes."""
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
        most = largest_batch(self._architecture, *self._padded(batch.shape[1], batch.shape[2]))
        sizes = powers_of_two(len(batch), most) if self._compiled is not None else equal_passes(len(batch), most)
        run = self._run_cuda if self._cuda else self._run_cpu
        result = np.empty_like(batch)
        bounds = np.cumsum([0, *sizes])
        with torch.inference_mode():
            for start, end in zip(bounds, bounds[1:], strict=False):
                run(batch[start:end], result[start:end])
        return result

    def compile_now(self, count: int, height: int, width: int) -> None:
        """Compile one bucket in the caller's thread."""
        if self._compiled is not None:
            shape = (count, 3, *self._padded(height, width))
            self._started.add(shape)
            self._compile(shape)

    def compile_soon(self, count: int, height: int, width: int) -> None:
        """Compile one bucket in the background (a model load never waits for the compiler)."""
        if self._compiled is not None:
            self._compile_later((count, 3, *self._padded(height, width)))

    def _padded(self, height: int, width: int) -> tuple[int, int]:
        if self._compiled is None:
            return height, width
        return _bucket(height), _bucket(width)

    def _run_cpu(self, batch: np.ndarray, result: np.ndarray) -> None:
        with self._lock:
            result[...] = self._compute(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    def _run_cuda(self, batch: np.ndarray, result: np.ndarray) -> None:
        assert self._upload is not None and self._download is not None
        # Pinned host memory lets the copies run asynchronously; PyTorch's caching host allocator
        # reuses its blocks once the copies that used them are done, and keeps them: two per batch in
        # flight per power-of-two size met (with two in flight and passes of 32 at 1 MP, about 1 GB).
        host_in = torch.from_numpy(np.ascontiguousarray(batch)).pin_memory()
        host_out = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=True)
        with self._lock:
            compute = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(self._upload):
                pixels = host_in.to(self.device, non_blocking=True)
            compute.wait_stream(self._upload)
            pixels.record_stream(compute)  # Allocated on the upload stream, used on this one.
            out = self._compute(pixels)
            self._download.wait_stream(compute)
            with torch.cuda.stream(self._download):
                host_out.copy_(out, non_blocking=True)
                out.record_stream(self._download)
                downloaded = torch.cuda.Event()  # type: ignore[no-untyped-call]
                downloaded.record()
        downloaded.synchronize()  # Outside the lock: the next batch is placed meanwhile.
        result[...] = host_out.numpy()  # Out of pinned memory, which goes back to the allocator.

    def _compute(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC in, uint8 NHWC out, on the pixels' device."""
        # NHWC memory seen as NCHW is channels-last.
        x = pixels.permute(0, 3, 1, 2).to(self.dtype).div_(255.0)
        height, width = x.shape[2:]
        padded_height, padded_width = self._padded(height, width)
        if (padded_height, padded_width) != (height, width):
            x = functional.pad(x, (0, padded_width - width, 0, padded_height - height), mode="reflect")
        x = x.contiguous(memory_format=torch.channels_last if self._channels_last else torch.contiguous_format)
        y = self._forward(x)[:, :, :height, :width]
        return y.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if self._compiled is not None and shape in self.ready:
            return self._compiled(x)
        if self._compiled is not None:
            self._compile_later(shape)
        forward: Callable[[torch.Tensor], torch.Tensor] = self.network
        return forward(x)

    def _compile_later(self, shape: tuple[int, ...]) -> None:
        """Compile a shape in the background, once (dynamo serialises compilations behind its own lock)."""
        if shape not in self._started:
            self._started.add(shape)
            threading.Thread(target=self._compile, args=(shape,), name=f"compile {shape}", daemon=True).start()

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Compile one shape."""
        layout = torch.channels_last if self._channels_last else torch.contiguous_format
        sample = torch.zeros(shape, device=self.device, dtype=self.dtype).contiguous(memory_format=layout)
        try:
            with torch.inference_mode():
                self._compiled(sample)  # type: ignore[misc]
        except Exception as exc:  # A compiler failure costs speed, never a request: the shape stays eager.
            self.compile_errors.append(f"{shape}: {type(exc).__name__}: {exc}"[:500])
            log.warning("compilation failed; this shape runs eager: %s", self.compile_errors[-1])
            return
        self.ready.add(shape)


def _bucket(side: int) -> int:
    """A side padded up to its bucket, where mirror padding can reach (a pad must be shorter than the side)."""
    padded = math.ceil(side / BUCKET) * BUCKET
    return padded if padded - side < side else side


def equal_passes(count: int, most: int) -> list[int]:
    """`count` in as few passes of at most `most` as possible, as equal as can be, larger first (5, 2 -> 2 2 1)."""
    passes = math.ceil(count / most)
    base, extra = divmod(count, passes)
    return [base + 1] * extra + [base] * (passes - extra)


def powers_of_two(count: int, most: int) -> list[int]:
    """`count` as a sum of powers of two, each at most `most`, largest first (5 -> 4 + 1)."""
    sizes = []
    largest = 1 << (max(1, most).bit_length() - 1)
    while count:
        size = min(largest, 1 << (count.bit_length() - 1))
        sizes.append(size)
        count -= size
    return sizes
