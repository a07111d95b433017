"""A contact sheet: a grid of models' outputs on held-out photos, each row with its style image and scores.

Rows are models (the photos themselves on top), columns are photos; each cell is the output as its
pool serves it, labelled with its style distance and content preservation.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from atelier_workshop.training.evaluation import Fidelity, Stylize

CELL = 256
LABEL = 22
HEADER = 200


@dataclass(frozen=True)
class Row:
    """One model in the sheet."""

    name: str
    style_image: Path
    stylize: Stylize
    fidelity: Fidelity


def _image(tensor: torch.Tensor) -> Image.Image:
    array = (tensor[0].clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def _fit(image: Image.Image, side: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (side, side), (255, 255, 255))
    cell.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return cell


def render(rows: list[Row], photos: dict[str, torch.Tensor], out: Path, cell: int = CELL) -> None:
    """Write the sheet as a PNG, each output in a `cell`-pixel square."""
    font = ImageFont.load_default(size=15)
    width = HEADER + cell * len(photos)
    height = (cell + LABEL) * (len(rows) + 1)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((8, cell // 2), "held-out photos", fill=(0, 0, 0), font=font)
    for column, (name, photo) in enumerate(photos.items()):
        sheet.paste(_fit(_image(photo), cell), (HEADER + column * cell, 0))
        draw.text((HEADER + column * cell + 4, cell + 2), name, fill=(0, 0, 0), font=font)
    for index, row in enumerate(rows, start=1):
        top = index * (cell + LABEL)
        style = Image.open(row.style_image).convert("RGB")
        style.thumbnail((HEADER - 16, cell - 60), Image.Resampling.LANCZOS)
        sheet.paste(style, (8, top + 4))
        verdict = "passes" if row.fidelity.passed else "FAILS"
        summary = f"{row.name}\nstyle {row.fidelity.style:.2f}\ncontent {row.fidelity.content:.2f} {verdict}"
        draw.multiline_text((8, top + cell - 52), summary, fill=(0, 0, 0), font=font, spacing=2)
        for column, (score, photo) in enumerate(zip(row.fidelity.photos, photos.values(), strict=True)):
            with torch.no_grad():
                output = row.stylize(photo)
            sheet.paste(_fit(_image(output), cell), (HEADER + column * cell, top))
            label = f"style {score.style:.2f}  content {score.content:.2f}"
            draw.text((HEADER + column * cell + 4, top + cell + 2), label, fill=(0, 0, 0), font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
