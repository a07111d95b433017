"""Sniffing, header limits before decoding, safe decoding to upright sRGB, encoding."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from atelier_shared import images
from atelier_shared.errors import ImageTooLarge, InvalidImage, UnsupportedImageType
from atelier_shared.images import SRGB_ICC, ImageLimits, decode, encode, probe, sniff
from tests.conftest import adobe_rgb_profile, bad_inputs, bomb_png, jpeg_bytes

LIMITS = ImageLimits()


def test_type_is_sniffed_from_bytes_not_names() -> None:
    assert sniff(jpeg_bytes()) == "image/jpeg"
    assert sniff(b"GIF89a....") == "image/gif"
    assert sniff(b"<svg xmlns=...") == "image/svg+xml"
    assert sniff(b"hello") is None


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("truncated.jpg", InvalidImage),
        ("empty.jpg", InvalidImage),
        ("notes.jpg", UnsupportedImageType),
        ("bomb.png", ImageTooLarge),
    ],
)
def test_bad_inputs_are_refused_with_their_reason(name: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        decode(bad_inputs()[name], LIMITS, max_side=64)
    assert str(raised.value)


def test_bomb_is_refused_from_the_header_without_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        probe(bomb_png(), LIMITS)


def test_probing_a_png_decodes_no_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probing a PNG decoded all of it (Pillow's getexif looks for EXIF after the pixels): a 236 KB
    PNG claiming 81 MP took 400 MB before the pixel limit refused it."""
    oriented = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 30)).save(oriented, "PNG", exif=exif)
    plain = io.BytesIO()
    Image.new("RGB", (40, 30)).save(plain, "PNG")
    xmp = io.BytesIO()
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>')
    Image.new("RGB", (40, 30)).save(xmp, "PNG", pnginfo=text)

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("probe decoded pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    assert probe(oriented.getvalue(), LIMITS).upright_size == (30, 40)
    assert probe(plain.getvalue(), LIMITS).orientation == 1
    assert probe(xmp.getvalue(), LIMITS).orientation == 8
    with pytest.raises(ImageTooLarge, match="9000x9000"):
        probe(bomb_png(9000, 9000), LIMITS)


def test_a_png_exif_after_its_pixels_is_ignored_by_probe_and_decode_alike() -> None:
    """Bug: the probe ignores an eXIf chunk after the pixels but decode applied it, so a rotated
    image came out of decode with the width and height the probe had swapped the other way."""
    exif = Image.Exif()
    exif[0x0112] = 6
    plain = saved(Image.new("RGB", (60, 40)), "PNG")
    raw = exif.tobytes().removeprefix(b"Exif\x00\x00")
    chunk = len(raw).to_bytes(4, "big") + b"eXIf" + raw + zlib.crc32(b"eXIf" + raw).to_bytes(4, "big")
    trailing = plain[: plain.rindex(b"IEND") - 4] + chunk + plain[plain.rindex(b"IEND") - 4 :]
    with Image.open(io.BytesIO(trailing)) as image:
        image.load()
        assert image.getexif()[0x0112] == 6  # Pillow does find it once the pixels are read.
    info = probe(trailing, LIMITS)
    assert info.orientation == 1
    assert decode(trailing, LIMITS, info=info).size == info.upright_size == (60, 40)


def test_byte_limit_is_checked_first() -> None:
    with pytest.raises(ImageTooLarge, match="bytes"):
        probe(jpeg_bytes(), ImageLimits(max_bytes=100))


def test_unsupported_real_image_type() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(UnsupportedImageType, match="image/bmp"):
        probe(buffer.getvalue(), LIMITS)


def saved(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def test_gif_tiff_heic_and_avif_decode_to_srgb() -> None:
    """Regression: GIF, TIFF and HEIC/HEIF (what phones and print shops send) were refused with 415."""
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    frames = [Image.new("RGB", (64, 48), colour) for colour in ((250, 10, 10), (10, 250, 10))]
    files = {
        "image/gif": saved(frames[0], "GIF", save_all=True, append_images=frames[1:]),  # Animated: first frame.
        "image/tiff": saved(photo, "TIFF"),
        "image/heic": saved(photo, "HEIF"),
        "image/avif": saved(photo, "AVIF"),
    }
    for content_type, data in files.items():
        info = probe(data, LIMITS)
        assert (info.content_type, info.width, info.height) == (content_type, 64, 48)
        image = decode(data, LIMITS)
        assert image.mode == "RGB" and image.size == (64, 48), content_type
    first = np.asarray(decode(files["image/gif"], LIMITS)).mean(axis=(0, 1))
    assert first[0] > 200 and first[1] < 60  # The first frame, red.


def test_a_jpeg_with_more_pictures_decodes_as_its_first() -> None:
    """Bug: a JPEG whose multi-picture header lists a second image (Android's Ultra HDR gain map, a
    camera's depth map) opens in Pillow as MPO, and was refused as "decode as nothing"."""
    photo = Image.new("RGB", (64, 48), (220, 20, 20))
    data = saved(photo, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 24))], quality=95)
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    info = probe(data, LIMITS)
    assert (info.content_type, info.width, info.height) == ("image/jpeg", 64, 48)
    image = decode(data, LIMITS, info=info)
    assert image.size == (64, 48)
    assert np.asarray(image).mean(axis=(0, 1))[0] > 200  # The photo, not the dark second picture.
    assert decode(data, LIMITS, max_side=16).size == (16, 12)  # Draft mode as for any JPEG.


def test_sixteen_bit_tiff_is_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    sixteen = Image.fromarray(ramp)
    assert sixteen.mode.startswith("I;16")
    image = decode(saved(sixteen, "TIFF"), LIMITS)
    values = np.asarray(image)[..., 0]
    assert values.min() <= 2 and values.max() >= 253 and 100 < values.mean() < 155


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (60, 40), (255, 0, 0))
    stored.paste((0, 0, 255), (0, 0, 10, 40))  # Blue band on the stored image's left edge.
    exif = Image.Exif()
    exif[0x0112] = 6  # Display rotated 90 degrees clockwise.
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    info = probe(buffer.getvalue(), LIMITS)
    assert (info.width, info.height, info.orientation) == (60, 40, 6)
    assert info.upright_size == (40, 60)
    upright = decode(buffer.getvalue(), LIMITS)
    assert upright.size == (40, 60)
    top = np.asarray(upright)[:5].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60  # The blue band is now on top.


def test_embedded_profile_is_converted_to_srgb() -> None:
    """Adobe RGB's greens are wider than sRGB's: the same numbers mean a more saturated green."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (100, 150, 100)).save(buffer, "PNG", icc_profile=adobe_rgb_profile())
    decoded = decode(buffer.getvalue(), LIMITS)
    assert decoded.mode == "RGB" and "icc_profile" not in decoded.info
    red, green, blue = np.asarray(decoded)[8, 8].tolist()
    assert red < 100 - 15 and green >= 150 and blue < 100, (red, green, blue)


def test_colour_transforms_are_built_once_per_profile_and_never_for_our_own() -> None:
    """Every decode built its transform anew, and the exporter converted each stylized result from the
    sRGB profile the stylizer embeds to the same sRGB (an exact identity, 13 ms a megapixel)."""
    images._transform_to_srgb.cache_clear()
    adobe = io.BytesIO()
    Image.new("RGB", (16, 16), (100, 150, 100)).save(adobe, "PNG", icc_profile=adobe_rgb_profile())
    ours = encode(Image.new("RGB", (16, 16), (100, 150, 100)), "image/png")
    for data in (adobe.getvalue(), adobe.getvalue(), ours):
        decode(data, LIMITS)
    assert images._transform_to_srgb.cache_info().misses == 1
    assert np.asarray(decode(ours, LIMITS))[8, 8].tolist() == [100, 150, 100]


def test_transparency_survives_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (20, 20), (10, 20, 30, 0)).save(buffer, "PNG")
    assert decode(buffer.getvalue(), LIMITS).mode == "RGBA"


def test_jpeg_is_decoded_at_reduced_scale_when_asked() -> None:
    image = decode(jpeg_bytes(1600, 1200), LIMITS, max_side=200)
    assert max(image.size) == 200


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "image/webp", "image/avif", "image/tiff"])
def test_encoding_embeds_srgb(content_type: str) -> None:
    data = encode(Image.new("RGB", (32, 24), (1, 2, 3)), content_type)
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.size == (32, 24)
        assert reopened.info.get("icc_profile") == SRGB_ICC


def test_a_stylized_result_passes_between_services_exactly_with_its_alpha() -> None:
    """What the stylizer stores for the exporter (uncompressed TIFF) comes back pixel for pixel."""
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 4), dtype=np.uint8)
    data = encode(Image.fromarray(pixels, "RGBA"), "image/tiff")
    assert probe(data, LIMITS).content_type == "image/tiff"
    assert np.array_equal(np.asarray(decode(data, LIMITS)), pixels)


def test_a_rotated_jpeg_decodes_to_an_exact_upright_size_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import JpegImagePlugin

    stored = Image.new("RGB", (1600, 1200), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # Upright it is 1200x1600.
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif.tobytes())
    drafts = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def recorded(image: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        answer = draft(image, mode, size)
        drafts.append(image.size)  # The size the DCT scale decodes to, in the file's orientation.
        return answer

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recorded)
    assert decode(buffer.getvalue(), LIMITS, size=(300, 400)).size == (300, 400)
    assert decode(buffer.getvalue(), LIMITS, max_side=400).size == (300, 400)
    assert drafts == [(400, 300), (400, 300)]  # A quarter scale: the file's sides, not the upright ones.


def test_a_crafted_header_is_an_invalid_image_whatever_pillow_raises() -> None:
    """Regression: an EXIF orientation stored as a DOUBLE holding infinity raised OverflowError from
    probe, outside the errors it caught, so the API answered 500 instead of 422 (and crafted TIFFs
    raised TypeError from decode the same way)."""
    import struct

    # A TIFF header with one IFD entry: Orientation, type 12 (DOUBLE), its value at offset 26.
    entry = struct.pack("<HHII", 0x0112, 12, 1, 26)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<Id", 0, float("inf"))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=b"Exif\x00\x00" + tiff)
    with pytest.raises(InvalidImage, match="infinity"):
        probe(buffer.getvalue(), LIMITS)


def test_sixteen_bit_png_is_scaled_to_the_nearest_eight_bit_value() -> None:
    values = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    decoded = np.asarray(decode(buffer.getvalue(), LIMITS).convert("L"))
    expected = np.floor(values.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1
