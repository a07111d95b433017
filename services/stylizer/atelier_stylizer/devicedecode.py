"""JPEG decoding on the GPU: nvJPEG through torchvision, resized to working size on the device.

On a GPU node the host's codecs, not the network, bound a pool: Pillow took 17.8 ms of a core (a 2-core
AMD EPYC) to decode a 1080x1080 JPEG to 1024 px (bench/results/codecs-cpu-2core.md), where the
quality network ran 1 MP in 4 ms compiled on an H200 (bench/results/gpu-nvidia-h200-service.md).
Imports only PyTorch, NumPy and torchvision, so `make bench-gpu` measures exactly this beside Pillow
on a GPU machine.

The decode, the resize and the copy back run on a stream of their own, so they proceed while the
pool's other batch runs the network on the default stream.

torchvision is the stylizer's `gpu` extra (its PyPI build is the CUDA one, matched to the pinned
torch; it does not load beside the CPU build of torch). The stylizer sends a JPEG here only where
Pillow would do nothing more than decode and resize it: upright, without a colour profile to apply,
in RGB or greyscale (stylizer.py), and of at most MAX_PIXELS, so that its full-size decode stays
small beside the batch on the device (Pillow decodes larger ones at a reduced DCT scale, which costs
little). Anything nvJPEG refuses goes to Pillow instead.
"""

import threading

import numpy as np
import torch
from torch.nn import functional

# The largest original decoded on the device: 25 MP (a 6000x4000 photo) takes about 0.4 GB there.
MAX_PIXELS = 25_000_000


class DeviceDecoder:
    """JPEG bytes in, (height, width, 3) uint8 RGB at the working size out, decoded on a CUDA device."""

    def __init__(self, device: str) -> None:
        from torchvision.io import ImageReadMode, decode_jpeg  # The `gpu` extra; ImportError without it.

        self.device = torch.device(device)
        self._decode_jpeg = decode_jpeg
        self._rgb = ImageReadMode.RGB
        self._stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
        # One decode at a time: torchvision keeps one nvJPEG handle per device, and a decode is short.
        self._lock = threading.Lock()

    def __call__(self, data: bytes, width: int, height: int) -> np.ndarray:
        encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        with self._lock, torch.inference_mode(), torch.cuda.stream(self._stream):
            image = self._decode_jpeg(encoded, mode=self._rgb, device=self.device)
            pixels = resize(image, width, height).permute(1, 2, 0).contiguous()
            host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(pixels, non_blocking=True)
            self._stream.synchronize()
        return np.asarray(host.numpy())


def resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, H, W) uint8 to (3, height, width) uint8, antialiased bicubic on the image's device (39.9 to
    52 dB from Pillow's Lanczos, which the CPU path uses, on the test photos: test_devicedecode)."""
    if tuple(image.shape[1:]) == (height, width):
        return image
    scaled = functional.interpolate(image[None].float(), size=(height, width), mode="bicubic", antialias=True)
    return scaled[0].clamp_(0.0, 255.0).round_().to(torch.uint8)


def open_decoder(device: str) -> tuple[DeviceDecoder | None, str]:
    """The device's JPEG decoder, or None and why not (not a CUDA device, or torchvision absent or built
    for another torch)."""
    if torch.device(device).type != "cuda":
        return None, f"the stylizer runs on {device}"
    try:
        decoder = DeviceDecoder(device)
        from torchvision.io import encode_jpeg

        sample = bytes(encode_jpeg(torch.full((3, 16, 16), 128, dtype=torch.uint8)).numpy())
        if decoder(sample, 8, 8).shape != (8, 8, 3):
            raise RuntimeError("a 16x16 test JPEG did not come back as 8x8 RGB")
    except Exception as exc:  # ImportError, or RuntimeError from a torchvision built for another torch.
        return None, f"torchvision cannot decode on {device}: {type(exc).__name__}: {exc}"[:300]
    return decoder, f"nvJPEG on {device}"
