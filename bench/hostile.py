"""A hostile corpus for make bench-reliability: over a hundred generated files, each named for what it is.

Valid images in every accepted format and mode (1x1, 2x2, 1x100000, CMYK, 16-bit, palette,
animated, every EXIF orientation), and broken ones: truncations at many offsets and bit flips of
each format, huge metadata chunks, decompression bombs of each format, polyglots, non-images.
Deterministic (fixed seeds), generated in memory, nothing downloaded.
"""

import io
import struct
import zlib

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF", "heic": "HEIF"}


def _photo(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def photo_jpeg(seed: int, width: int = 320, height: int = 240) -> bytes:
    """A distinct ordinary JPEG per seed (the reliability stream's uploads)."""
    return _save(_photo(width, height, seed), "JPEG", quality=90)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG header claiming a huge image over a few bytes of data."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data = _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024))
    return b"\x89PNG\r\n\x1a\n" + header + data + _png_chunk(b"IEND", b"")


def valid() -> dict[str, bytes]:
    """Images Atelier accepts: each should end exported."""
    photo = _photo()
    files = {f"valid.{name}": _save(photo, fmt) for name, fmt in FORMATS.items()}
    files["valid.avif"] = _save(photo, "AVIF")
    files["jpeg-named.png"] = _save(photo, "JPEG")
    files["tiny-1x1.png"] = _save(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")
    files["tiny-2x2.png"] = _save(Image.new("RGB", (2, 2), (30, 200, 30)), "PNG")
    files["strip-1x100000.png"] = _save(Image.new("RGB", (1, 100_000), (30, 30, 200)), "PNG")
    files["strip-100000x1.png"] = _save(Image.new("RGB", (100_000, 1), (90, 30, 200)), "PNG")
    files["cmyk.jpeg"] = _save(photo.convert("CMYK"), "JPEG")
    files["sixteen-bit.png"] = _save(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG")
    files["palette.png"] = _save(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0)
    files["grey-alpha.png"] = _save(photo.convert("LA"), "PNG")
    files["one-bit.png"] = _save(photo.convert("1"), "PNG")
    frames = [_photo(seed=seed) for seed in range(3)]
    files["animated.gif"] = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    files["animated.webp"] = _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        files[f"exif-orientation-{orientation}.jpeg"] = _save(_photo(240, 160, seed=orientation), "JPEG", exif=exif)
    return files


def broken() -> dict[str, bytes]:
    """Files Atelier must refuse with a clear error (some truncations still decode: those may export)."""
    photo = _photo()
    files: dict[str, bytes] = {}
    rng = np.random.default_rng(1)
    for name, fmt in FORMATS.items():
        data = _save(photo, fmt)
        for share in (0.0, 0.02, 0.1, 0.25, 0.5, 0.75, 0.95):
            files[f"truncated-{int(share * 100)}pc.{name}"] = data[: max(1, int(len(data) * share))]
        for flip in range(3):
            flipped = bytearray(data)
            for position in rng.integers(len(data) // 8, len(data), 16):
                flipped[position] ^= 0xFF
            files[f"bitflips-{flip}.{name}"] = bytes(flipped)
    files["bomb.png"] = _png_bomb()
    files["bomb.gif"] = b"GIF89a" + struct.pack("<HH", 65_535, 65_535) + b"\x00\x00\x00" + b"\x2c" + b"\x00" * 32
    files["bomb.jpeg"] = _jpeg_with_size(_save(photo, "JPEG"), 65_000, 65_000)
    files["bomb.tiff"] = _tiff_with_size(_save(Image.new("L", (1, 1)), "TIFF"), 100_000, 100_000)
    files["bomb.webp"] = _webp_with_canvas(_save(Image.new("RGB", (4, 4)), "WEBP", lossless=True), 16_383, 16_383)
    valid_png = _save(photo, "PNG")
    files["huge-text-chunk.png"] = (
        valid_png[:33] + _png_chunk(b"tEXt", b"comment\0" + b"x" * 8_000_000) + valid_png[33:]
    )
    files["huge-comment.jpeg"] = _jpeg_with_comments(_save(photo, "JPEG"), 400)
    files["polyglot-jpeg-zip.jpeg"] = _save(photo, "JPEG") + b"PK\x03\x04" + bytes(200)
    files["polyglot-gif-script.gif"] = b"GIF89a/*" + bytes(64) + b"*/=1;alert(1);"
    files["polyglot-png-html.png"] = valid_png + b"<html><script>alert(1)</script></html>"
    files["polyglot-pdf-jpeg.jpeg"] = b"%PDF-1.4\n" + _save(photo, "JPEG")
    files["empty.jpeg"] = b""
    files["random-bytes.png"] = rng.integers(0, 255, 4096, dtype=np.uint8).tobytes()
    files["text.jpeg"] = b"this is not an image\n" * 50
    return files


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims another size."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def _tiff_with_size(data: bytes, width: int, height: int) -> bytes:
    """A little-endian TIFF whose ImageWidth and ImageLength tags claim another size."""
    patched = bytearray(data)
    (ifd,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, ifd)
    for index in range(entries):
        at = ifd + 2 + 12 * index
        (tag,) = struct.unpack_from("<H", data, at)
        if tag in (256, 257):
            struct.pack_into("<HHII", patched, at, tag, 4, 1, width if tag == 256 else height)
    return bytes(patched)


def _webp_with_canvas(data: bytes, width: int, height: int) -> bytes:
    """A WebP (RIFF) with an extended header claiming a huge canvas over a tiny bitstream."""
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + bytes(4)
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + vp8x + data[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _jpeg_with_comments(data: bytes, count: int) -> bytes:
    """Many 64 KB comment segments after the start-of-image marker (about 25 MB of metadata)."""
    comment = b"\xff\xfe" + struct.pack(">H", 65_535) + b"c" * 65_533
    return data[:2] + comment * count + data[2:]


def corpus() -> dict[str, bytes]:
    """Every file, valid and broken."""
    return {**valid(), **broken()}
