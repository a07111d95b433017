"""Image input and output shared by the services: sniffing, limits, safe decoding, encoding.

The order of checks guards against image bombs: the type is sniffed from the bytes (never from a
name or Content-Type), then dimensions are read from the header, then byte and pixel limits are
enforced, and only then are pixels decoded.
"""

import functools
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms
from pillow_heif import register_heif_opener

from atelier_shared.errors import ImageTooLarge, InvalidImage, UnsupportedImageType

# Pillow's own bomb check is a second line of defence; ours runs first with clearer errors.
Image.MAX_IMAGE_PIXELS = 200_000_000
# HEIC/HEIF (what phones send) through pillow-heif; AVIF, GIF and TIFF are Pillow's own.
register_heif_opener()

SUPPORTED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/heic", "image/avif")
_PIL_FORMATS = {
    "JPEG": "image/jpeg",
    # A JPEG whose multi-picture header lists more images (Ultra HDR's gain map, a camera's depth map
    # or preview): Pillow reads the first, the photo.
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/tiff": "tif",
    "image/heic": "heic",
    "image/avif": "avif",
}
# ISO base media files (HEIC and AVIF): the brand in `ftyp` can mislead (mif1), so the decoder decides.
_ISOBMFF = ("image/heic", "image/avif")

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_ICC: bytes = _SRGB.tobytes()


@dataclass(frozen=True)
class ImageLimits:
    """Largest accepted upload, in bytes and in decoded pixels."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 16_384


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, before any pixel is decoded."""

    content_type: str
    width: int
    height: int
    # EXIF orientation (1 is upright; 5 to 8 swap width and height when applied).
    orientation: int = 1
    # Pillow's mode as stored ("RGB", "L", "CMYK", ...), and whether an embedded colour profile other
    # than our own sRGB calls for a conversion.
    mode: str = "RGB"
    foreign_profile: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.content_type]


def sniff(data: bytes) -> str | None:
    """The MIME type read from the magic bytes, or None when unrecognised."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if data.startswith(b"BM"):
        return "image/bmp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return "image/avif" if brand in (b"avif", b"avis") else "image/heic"
    if data.lstrip()[:5].lower() in (b"<?xml", b"<svg "):
        return "image/svg+xml"
    return None


def extension_for(content_type: str) -> str:
    """File extension for a supported or rendition content type."""
    return _EXTENSIONS[content_type]


def probe(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Sniff the type and read dimensions from the header; enforce limits without decoding."""
    if not data:
        raise InvalidImage("empty body: send the image bytes")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes exceeds the limit of {limits.max_bytes} bytes")
    content_type = sniff(data)
    if content_type is None:
        raise UnsupportedImageType(
            f"not a recognised image (first bytes {data[:8]!r}); send one of {', '.join(SUPPORTED_TYPES)}"
        )
    if content_type not in SUPPORTED_TYPES:
        raise UnsupportedImageType(f"{content_type} is not supported; send one of {', '.join(SUPPORTED_TYPES)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                actual = _PIL_FORMATS.get(image.format or "")
                orientation = int(_header_exif(image).get(0x0112, 1) or 1)
                mode = image.mode
                foreign_profile = (image.info.get("icc_profile") or SRGB_ICC) != SRGB_ICC
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 Pillow's plugins raise OverflowError, TypeError, struct.error, ...
        raise InvalidImage(f"unreadable {content_type} header: {exc}") from exc
    if content_type in _ISOBMFF and actual in _ISOBMFF:
        content_type = actual
    if actual != content_type:
        raise InvalidImage(f"bytes start like {content_type} but decode as {actual or 'nothing'}")
    if width <= 0 or height <= 0:
        raise InvalidImage(f"header claims {width}x{height} pixels")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{width}x{height} ({width * height / 1e6:.1f} MP) exceeds the limit of "
            f"{limits.max_pixels / 1e6:.0f} MP and {limits.max_side} px per side"
        )
    return ImageInfo(content_type, width, height, orientation if 1 <= orientation <= 8 else 1, mode, foreign_profile)


def _header_exif(image: Image.Image) -> Image.Exif:
    """The EXIF data found before the pixels. For a PNG without an eXIf chunk there, Pillow's PNG
    getexif decodes the whole image looking for one after them (a 236 KB PNG of 81 MP took 400 MB to
    probe); the generic one reads what came before (eXIf, a raw EXIF profile, XMP's orientation)."""
    return Image.Image.getexif(image) if image.format == "PNG" else image.getexif()


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale (TIFF, PNG) as 8-bit L, scaled rather than clipped."""
    values = np.array(image, dtype=np.float32)  # A copy, scaled in place: one float image in memory, not four.
    top = 1.0 if image.mode == "F" else 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 255.0)
    values *= 255.0 / top
    np.clip(values, 0.0, 255.0, out=values)
    values += 0.5
    return Image.fromarray(values.astype(np.uint8), "L")


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc: bytes, mode: str, target: str) -> ImageCms.ImageCmsTransform:
    """A colour transform from an embedded profile to sRGB, built once per profile (1.7 ms each time
    for a camera's sRGB variant; a brand's uploads share a handful of profiles). Shared by the decoding
    threads, so without LittleCMS's one-pixel cache, which is per transform (same speed measured)."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(source, _SRGB, mode, target, flags=ImageCms.Flags.NOCACHE)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert to RGB or RGBA in sRGB, honouring an embedded ICC profile."""
    if image.mode.startswith("I") or image.mode == "F":
        image = _eight_bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    # Our own profile (what every rendition and stylized result embeds) is already the target.
    if icc and icc != SRGB_ICC:
        try:
            if image.mode not in ("RGB", "RGBA", "CMYK", "L"):
                image = image.convert(target)
            image = ImageCms.applyTransform(image, _transform_to_srgb(icc, image.mode, target)) or image
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # A broken profile is not worth failing the asset: fall back to plain conversion.
    if image.mode != target:
        image = image.convert(target)
    image.info.pop("icc_profile", None)
    return image


# EXIF orientation to the transposition that makes the image upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def decode(
    data: bytes,
    limits: ImageLimits,
    max_side: int | None = None,
    info: ImageInfo | None = None,
    *,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode to upright sRGB RGB/RGBA, optionally reduced so the longest side is about `max_side`, or
    resized to exactly `size` (upright width, height: the stylizer's working size).

    Either way the pixels are resampled once: JPEG is decoded at a reduced DCT scale when that
    suffices (a fraction of the work), then one Lanczos pass makes the size. Raises InvalidImage for
    truncated or corrupt data and ImageTooLarge before decoding a bomb. Pass the `info` from an earlier
    `probe` of the same bytes to skip reading the header again.
    """
    info = info or probe(data, limits)
    if size is None and max_side:
        size = fit_within(info.upright_size, max_side)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if size and info.content_type == "image/jpeg":
                # The draft keeps at least the requested size, in the file's own orientation.
                image.draft("RGB", size[::-1] if info.orientation in (5, 6, 7, 8) else size)
            image.load()
            # The orientation the probe read, not what load() found: a PNG's eXIf after its pixels
            # is ignored by both, so the decoded size is always the probe's upright size.
            upright = image.transpose(_TRANSPOSE[info.orientation]) if info.orientation in _TRANSPOSE else image
            result = _to_srgb(upright)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 on crafted files, not only OSError: each is a bad image.
        raise InvalidImage(f"corrupt or truncated {info.content_type}: {exc}") from exc
    return resize(result, size) if size else result


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` at `size` in one Lanczos pass, or itself where it has that size already. A box reduction
    by a whole factor comes first where the target is over 3x smaller: Pillow's documentation calls a
    `reducing_gap` of 3 indistinguishable from Lanczos all the way in most cases, for a fraction of
    the time from a large original."""
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def fit_within(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down (never up) so its longest side is at most `max_side`, keeping its shape."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(image: Image.Image, content_type: str, quality: int = 85, fast: bool = False) -> bytes:
    """Encode with the sRGB profile embedded; alpha is kept where the format has it. `fast` trades a
    few percent of size for speed where the codec has an effort setting (WebP at 512 px: 8.5 ms
    instead of 19 ms for a 3% larger file): for previews, which an artist is waiting on."""
    buffer = io.BytesIO()
    if content_type == "image/jpeg":
        image = image.convert("RGB") if image.mode != "RGB" else image
        image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, icc_profile=SRGB_ICC)
    elif content_type == "image/png":
        image.save(buffer, "PNG", compress_level=1, icc_profile=SRGB_ICC)
    elif content_type == "image/webp":
        image.save(buffer, "WEBP", quality=quality, method=2 if fast else 4, icc_profile=SRGB_ICC)
    elif content_type == "image/avif":
        image.save(buffer, "AVIF", quality=quality, speed=10 if fast else 8, icc_profile=SRGB_ICC)
    elif content_type == "image/tiff":
        # Uncompressed: for images passed between services, where bytes are cheaper than the codec's
        # time (at 1024 px 0.5 ms to write and 0.75 to read, against 39 and 17 ms as PNG, for 4.6x the
        # bytes: bench/results/codecs-cpu-2core.md).
        image.save(buffer, "TIFF", compression="raw", icc_profile=SRGB_ICC)
    else:
        raise ValueError(f"cannot encode {content_type}")
    return buffer.getvalue()
