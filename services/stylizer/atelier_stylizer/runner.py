"""A style network on a PyTorch device: 8-bit images in, 8-bit images out.

Imports only PyTorch, NumPy and the network code, so `make bench-gpu` runs exactly this on a GPU
machine that has no project environment. Batches cross the host boundary as uint8 NHWC (a quarter of
float32's bytes); on CUDA they go through pinned staging buffers with non-blocking copies, and
scaling, precision and layout change on the device: NHWC memory viewed as NCHW is already the
channels-last layout tensor cores want, so no copy is made for it. Optionally the network is
compiled by inductor with dynamic shapes (one compilation serves every working size and batch),
which fuses the instance normalisation and activations around cuDNN's convolutions
(bench/results/gpu-nvidia-h200.md: 3-4x eager at 1 MP).
"""

import copy
import math
import threading

import numpy as np
import torch

from atelier_stylizer.networks import TransformerNet, largest_batch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchRunner:
    """Runs batches (N, H, W, 3) uint8 through a network and returns them the same shape, clamped."""

    def __init__(self, network: TransformerNet, device: str, precision: str, compiled: bool = False) -> None:
        if precision not in DTYPES:
            raise ValueError(f"PyTorch runs fp32, fp16 or bf16, not {precision!r}")
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        self.compiled = compiled
        self._architecture = network.architecture
        self._cuda = self.device.type == "cuda"
        layout = torch.channels_last if self._cuda else torch.contiguous_format
        # A copy: Module.to converts in place, and the caller's network may serve at another precision.
        module = copy.deepcopy(network).to(self.device, self.dtype).to(memory_format=layout).eval()  # type: ignore[call-overload]
        self.network: torch.nn.Module = module
        self._forward = torch.compile(module, dynamic=True) if compiled else module
        # One batch at a time: the staging buffers are reused (the device runs one batch at a time anyway).
        self._lock = threading.Lock()
        self._staging: dict[str, torch.Tensor] = {}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The batch in as few equal passes as 32-bit indexing allows (a batch of 32 quality images at
        1 MP failed on the H200 in reflection padding; bench/results/gpu-nvidia-h200.md)."""
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
        passes = math.ceil(len(batch) / largest_batch(self._architecture, batch.shape[1], batch.shape[2]))
        with self._lock, torch.inference_mode():
            if passes == 1:
                return self._run(batch)
            return np.concatenate([self._run(piece) for piece in np.array_split(batch, passes)])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(np.ascontiguousarray(batch))
        if self._cuda:
            pixels = self._stage("in", pixels).to(self.device, non_blocking=True)
        # NHWC memory seen as NCHW: channels-last, which is what the CUDA network wants.
        x = pixels.permute(0, 3, 1, 2).to(self.dtype).div_(255.0)
        if not self._cuda:
            x = x.contiguous()
        y = self._forward(x)
        out = y.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1)
        if not self._cuda:
            return np.asarray(out.contiguous().numpy())
        host = self._stage("out", out)
        host.copy_(out, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return np.asarray(host.numpy()).copy()

    def _stage(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """A pinned host buffer of the tensor's shape (grown as needed, then reused), holding it if on
        the host: pinned memory is what lets a copy to or from the device run asynchronously."""
        buffer = self._staging.get(name)
        if buffer is None or buffer.numel() < tensor.numel():
            buffer = torch.empty(tensor.numel(), dtype=torch.uint8, pin_memory=True)
            self._staging[name] = buffer
        staged = buffer[: tensor.numel()].view(tensor.shape)
        if tensor.device.type == "cpu":
            staged.copy_(tensor)
        return staged
