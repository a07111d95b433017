"""Procedural art the project makes itself: style images, and an endless stream of content scenes.

Nothing is downloaded. Style images are seeded, so `make models` reproduces them bit for bit; the
content stream draws varied scenes (gradients, shapes, strokes, textures, blur) so a feed-forward
network learns to stylize structure it has not seen.
"""

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Palette = list[tuple[int, int, int]]

JEWEL: Palette = [(178, 34, 52), (0, 94, 140), (255, 176, 0), (34, 139, 84), (120, 40, 140), (230, 110, 30)]
EARTH: Palette = [(38, 70, 83), (42, 157, 143), (233, 196, 106), (244, 162, 97), (231, 111, 81), (250, 240, 220)]
# Brand palette of the demo brand "acme" (deploy/brands/acme.yaml).
ACME: Palette = [(0, 82, 147), (255, 199, 44), (238, 238, 238), (30, 30, 30), (0, 164, 153)]


def _voronoi(size: int, cells: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-site index per pixel and the gap between nearest and second-nearest distances."""
    side = int(math.sqrt(cells))
    grid = (np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) + 0.5) / side
    sites = (grid + rng.uniform(-0.45, 0.45, grid.shape) / side) * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    nearest = np.zeros((size, size), dtype=np.int32)
    first = np.full((size, size), np.inf, dtype=np.float32)
    second = np.full((size, size), np.inf, dtype=np.float32)
    for index, (x, y) in enumerate(sites):
        distance = np.hypot(xs - x, ys - y)
        closer = distance < first
        second = np.where(closer, first, np.minimum(second, distance))
        nearest = np.where(closer, index, nearest)
        first = np.where(closer, distance, first)
    return nearest, second - first


def mosaic_tiles(size: int = 512, seed: int = 1, palette: Palette = EARTH) -> Image.Image:
    """Small irregular tiles in a palette, slightly mottled, with light grout lines."""
    rng = np.random.default_rng(seed)
    nearest, gap = _voronoi(size, 900, rng)
    colours = np.array(palette, dtype=np.float32)[rng.integers(0, len(palette), nearest.max() + 1)]
    colours *= rng.uniform(0.8, 1.15, (len(colours), 1))
    pixels = colours[nearest] * (1 + 0.06 * rng.standard_normal((size, size, 1)))
    grout = gap < 2.2
    pixels[grout] = (226, 220, 205)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def stained_glass(size: int = 512, seed: int = 2, palette: Palette = JEWEL) -> Image.Image:
    """Large jewel-coloured panes, lit from their centres, in thick dark leading."""
    rng = np.random.default_rng(seed)
    nearest, gap = _voronoi(size, 100, rng)
    colours = np.array(palette, dtype=np.float32)[rng.integers(0, len(palette), nearest.max() + 1)]
    light = np.clip(gap / 30.0, 0, 1)[..., None]
    pixels = colours[nearest] * (0.55 + 0.6 * light)
    pixels[gap < 4.0] = (18, 16, 20)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def brush_strokes(size: int = 512, seed: int = 3, palette: Palette = JEWEL + EARTH) -> Image.Image:
    """Thick, overlapping strokes that follow a swirling flow field, like an impasto painting."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), (40, 36, 60))
    draw = ImageDraw.Draw(canvas, "RGBA")
    for _ in range(2600):
        x, y = rng.uniform(0, size, 2)
        angle = math.sin(x / size * 6.0) * 1.8 + math.cos(y / size * 5.0) * 1.2
        length = rng.uniform(10, 34) * size / 512
        width = int(rng.uniform(3, 9) * size / 512) + 1
        red, green, blue = palette[rng.integers(0, len(palette))]
        shade = rng.uniform(0.75, 1.2)
        colour = (int(min(red * shade, 255)), int(min(green * shade, 255)), int(min(blue * shade, 255)), 215)
        dx, dy = math.cos(angle) * length, math.sin(angle) * length
        draw.line((x - dx, y - dy, x + dx, y + dy), fill=colour, width=width)
    return canvas.filter(ImageFilter.SMOOTH_MORE)


def brand_pattern(size: int = 512, seed: int = 4, palette: Palette = ACME) -> Image.Image:
    """A brand palette pattern: bold diagonal bands, dots and rings."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), palette[2])
    draw = ImageDraw.Draw(canvas)
    band = size // 8
    for offset in range(-size, 2 * size, band):
        draw.polygon(
            [(offset, 0), (offset + band // 2, 0), (offset + band // 2 - size, size), (offset - size, size)],
            fill=palette[(offset // band) % 2],
        )
    for _ in range(40):
        x, y = rng.uniform(0, size, 2)
        radius = rng.uniform(8, 40) * size / 512
        colour = palette[rng.integers(0, len(palette))]
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=max(2, int(radius / 3)))
    return canvas


STYLES: dict[str, Callable[[], Image.Image]] = {
    "tiles": mosaic_tiles,
    "glass": stained_glass,
    "brush": brush_strokes,
    "brand": brand_pattern,
}


def content_scene(size: int, rng: np.random.Generator) -> Image.Image:
    """One random scene: a gradient ground, shapes, strokes, texture and blur in varying amounts."""
    top, bottom = rng.uniform(0, 255, (2, 3))
    ramp = np.linspace(0, 1, size)[:, None, None]
    pixels = top * (1 - ramp) + bottom * ramp
    pixels = np.broadcast_to(pixels, (size, size, 3)).copy()
    cells = int(rng.integers(4, size // 2))
    coarse = rng.standard_normal((cells, cells, 3)).astype(np.float32)
    noise = np.stack(
        [np.asarray(Image.fromarray(coarse[..., c]).resize((size, size), Image.Resampling.BICUBIC)) for c in range(3)],
        axis=-1,
    )
    pixels += noise * rng.uniform(0, 30)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(int(rng.integers(3, 14))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(140, 256)),)
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.6, 2) * size
        kind = rng.integers(0, 4)
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 2:
            points = [tuple(rng.uniform(0, size, 2)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(points, fill=colour)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(1, 12)))
    blur = rng.uniform(0, 2.0)
    return image.filter(ImageFilter.GaussianBlur(blur)) if blur > 0.3 else image


def write_content(folder: Path, count: int, size: int = 320, seed: int = 0) -> list[Path]:
    """Write `count` scenes as PNG files: a content folder for training."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"scene-{index:04d}.png"
        content_scene(size, rng).save(path)
        paths.append(path)
    return paths
