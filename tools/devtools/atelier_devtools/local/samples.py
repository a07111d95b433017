"""Sample images the project makes itself (deterministic, procedural): no photos are shipped.

Each exercises something: a product shot on a plain background, a landscape, a portrait stored
sideways with an EXIF orientation tag, a transparent PNG cutout, a dark night scene, and a
detailed texture in WebP.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs / width, ys / height


def _noise(width: int, height: int, seed: int, scale: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // scale + 2, width // scale + 2)).astype(np.float32)
    image = Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def product_shot() -> Image.Image:
    """A bottle on a plain white studio background."""
    image = Image.new("RGB", (800, 800), (246, 246, 244))
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 660, 550, 700), fill=(215, 215, 212))
    draw.rounded_rectangle((300, 260, 500, 680), radius=40, fill=(28, 110, 160))
    draw.rectangle((360, 170, 440, 270), fill=(20, 80, 120))
    draw.rounded_rectangle((330, 380, 470, 520), radius=10, fill=(240, 200, 60))
    draw.rectangle((320, 290, 340, 640), fill=(90, 170, 210))
    return image


def landscape() -> Image.Image:
    """Sky, sun and layered hills."""
    width, height = 1024, 640
    xs, ys = _grid(width, height)
    sky = np.stack([0.35 + 0.5 * ys, 0.55 + 0.35 * ys, 0.95 - 0.2 * ys], axis=-1)
    sun = np.exp(-(((xs - 0.72) * 1.6) ** 2 + ((ys - 0.28) * 2.5) ** 2) * 60)[..., None]
    pixels = np.clip(sky + sun * np.array([1.0, 0.85, 0.4]), 0, 1)
    for index, (base, colour) in enumerate(
        [(0.55, (0.35, 0.5, 0.3)), (0.68, (0.22, 0.4, 0.2)), (0.8, (0.12, 0.28, 0.12))]
    ):
        ridge = base + 0.06 * np.sin(xs * (5 + 3 * index) + index) + 0.05 * (_noise(width, height, index, 64) - 0.5)
        below = ys > ridge
        texture = 0.85 + 0.3 * _noise(width, height, 10 + index, 4)[..., None]
        pixels = np.where(below[..., None], np.array(colour) * texture, pixels)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def portrait_sideways() -> tuple[Image.Image, bytes]:
    """A portrait stored rotated, with EXIF orientation 6 (display rotates it 90 degrees clockwise)."""
    upright = Image.new("RGB", (480, 720), (230, 190, 160))
    draw = ImageDraw.Draw(upright)
    draw.rectangle((0, 0, 480, 240), fill=(120, 160, 210))
    draw.ellipse((140, 180, 340, 420), fill=(190, 140, 110))
    draw.rectangle((120, 420, 360, 720), fill=(60, 60, 90))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return stored, exif.tobytes()


def cutout() -> Image.Image:
    """A transparent PNG: a star on nothing."""
    image = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, 11)[:-1]
    points = [
        (300 + (250 if i % 2 == 0 else 110) * np.cos(a), 300 + (250 if i % 2 == 0 else 110) * np.sin(a))
        for i, a in enumerate(angles)
    ]
    draw.polygon(points, fill=(230, 60, 120, 255))
    draw.ellipse((240, 240, 360, 360), fill=(255, 220, 80, 255))
    return image


def night_scene() -> Image.Image:
    """A dark street with a few lights."""
    width, height = 900, 600
    xs, ys = _grid(width, height)
    pixels = np.stack([0.05 + 0.05 * ys, 0.06 + 0.05 * ys, 0.12 + 0.06 * ys], axis=-1)
    for x, y, colour in [(0.2, 0.4, (1.0, 0.8, 0.4)), (0.55, 0.35, (0.9, 0.9, 1.0)), (0.8, 0.5, (1.0, 0.5, 0.3))]:
        glow = np.exp(-(((xs - x) * 1.5) ** 2 + (ys - y) ** 2) * 400)[..., None]
        pixels = pixels + glow * np.array(colour)
    pixels = pixels + 0.04 * (_noise(width, height, 7, 2)[..., None] - 0.5)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))


def texture() -> Image.Image:
    """Fine, colourful detail (sharp edges everywhere)."""
    width = height = 640
    xs, ys = _grid(width, height)
    red = 0.5 + 0.5 * np.sin(xs * 80 + 3 * np.sin(ys * 20))
    green = 0.5 + 0.5 * np.sin(ys * 70 + 2 * np.cos(xs * 15))
    blue = 0.5 + 0.5 * np.sin((xs + ys) * 50)
    pixels = np.stack([red, green, blue], axis=-1)
    checker = ((np.floor(xs * 32) + np.floor(ys * 32)) % 2)[..., None]
    return Image.fromarray((np.clip(0.8 * pixels + 0.2 * checker, 0, 1) * 255).astype(np.uint8))


def write_samples(folder: Path) -> list[Path]:
    """Write every sample into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, image: Image.Image, **options: object) -> None:
        buffer = io.BytesIO()
        image.save(buffer, **options)  # type: ignore[arg-type]
        path = folder / name
        path.write_bytes(buffer.getvalue())
        written.append(path)

    save("product-shot.jpg", product_shot(), format="JPEG", quality=90)
    save("landscape.jpg", landscape(), format="JPEG", quality=90)
    stored, exif = portrait_sideways()
    save("portrait-exif-rotated.jpg", stored, format="JPEG", quality=90, exif=exif)
    save("cutout.png", cutout(), format="PNG")
    save("night-scene.jpg", night_scene(), format="JPEG", quality=90)
    save("texture.webp", texture(), format="WEBP", quality=90)
    return written
