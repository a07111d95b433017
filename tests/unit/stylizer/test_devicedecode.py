"""JPEG decoding on the GPU: which originals may go there, the resize it does, the fall back to Pillow.

nvJPEG itself needs a GPU and the CUDA build of torchvision: `make bench-gpu` runs it there against
Pillow (bench/gpu.py, service section). Here the decoder stands in with Pillow's pixels.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from atelier_shared.images import SRGB_ICC, ImageLimits, probe
from atelier_stylizer.batches import working_size
from atelier_stylizer.devicedecode import open_decoder, resize
from atelier_stylizer.inference import psnr_db
from atelier_stylizer.service import jpeg_decoder
from atelier_stylizer.settings import StylizerSettings
from atelier_stylizer.stylizer import device_decodable, load_original
from tests.conftest import adobe_rgb_profile, jpeg_bytes, real_photos

LIMITS = ImageLimits()


def saved(image: Image.Image, kind: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def test_only_jpegs_pillow_would_just_decode_and_resize_go_to_the_gpu() -> None:
    rgb = Image.open(io.BytesIO(jpeg_bytes(64, 48)))
    turned = Image.Exif()
    turned[0x0112] = 6
    cases = {
        "plain": (jpeg_bytes(64, 48), True),
        "greyscale": (saved(rgb.convert("L")), True),
        "our sRGB": (saved(rgb, icc_profile=SRGB_ICC), True),
        "Adobe RGB": (saved(rgb, icc_profile=adobe_rgb_profile()), False),
        "turned by EXIF": (saved(rgb, exif=turned), False),
        "CMYK": (saved(rgb.convert("CMYK")), False),
        "PNG": (saved(rgb, "PNG"), False),
        "over 25 MP": (saved(Image.new("RGB", (6000, 4200))), False),
    }
    chosen = {name: device_decodable(probe(data, LIMITS)) for name, (data, _) in cases.items()}
    assert chosen == {name: expected for name, (_, expected) in cases.items()}


@pytest.mark.parametrize("side", [1024, 512, 256])
def test_the_device_resize_matches_pillows_lanczos_on_real_photos(side: int) -> None:
    for path in real_photos():
        image = Image.open(path).convert("RGB")
        size = working_size(image.width, image.height, side)
        reference = np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
        resized = resize(pixels, *size).permute(1, 2, 0).numpy()
        assert resized.shape == reference.shape
        assert psnr_db(reference, resized) >= 38.0, path.name


class PillowStandIn:
    """The device decoder's contract (bytes and working size in, HxWx3 uint8 out) with Pillow's pixels."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[int, int]] = []
        self._refuse = refuse

    def __call__(self, data: bytes, width: int, height: int) -> np.ndarray:
        self.calls.append((width, height))
        if self._refuse:
            raise RuntimeError("nvjpegDecode failed: JPEG stream not supported")
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        return np.asarray(image)


def test_a_decodable_jpeg_goes_to_the_device_decoder_at_working_size_and_the_rest_to_pillow() -> None:
    decoder = PillowStandIn()
    prepared, used = load_original(jpeg_bytes(640, 480), LIMITS, 256, decoder)  # type: ignore[arg-type]
    assert used == "nvjpeg" and decoder.calls == [(256, 192)] and prepared.rgb.shape == (192, 256, 3)

    png = saved(Image.open(io.BytesIO(jpeg_bytes(640, 480))), "PNG")
    prepared, used = load_original(png, LIMITS, 256, decoder)  # type: ignore[arg-type]
    assert used == "pillow" and len(decoder.calls) == 1 and prepared.rgb.shape == (192, 256, 3)


def test_a_jpeg_the_device_decoder_refuses_is_decoded_by_pillow() -> None:
    decoder = PillowStandIn(refuse=True)
    prepared, used = load_original(jpeg_bytes(640, 480), LIMITS, 256, decoder)  # type: ignore[arg-type]
    assert used == "pillow" and decoder.calls == [(256, 192)] and prepared.rgb.shape == (192, 256, 3)


def test_without_a_gpu_pillow_decodes_and_asking_for_nvjpeg_fails_with_the_reason() -> None:
    decoder, reason = open_decoder("cpu")
    assert decoder is None and "cpu" in reason
    assert jpeg_decoder(StylizerSettings(stylizer_device="cpu"), "cpu") is None
    with pytest.raises(ValueError, match="ATELIER_STYLIZER_DECODE=nvjpeg, but the stylizer runs on cpu"):
        jpeg_decoder(StylizerSettings(stylizer_device="cpu", stylizer_decode="nvjpeg"), "cpu")
