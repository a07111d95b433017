"""make bench-style: the shipped style models' fidelity, old (random-feature loss) against new, and training cost.

For each shipped model and for the models shipped before the learned loss network (read from git
at OLD_COMMIT), the fidelity scores on the held-out photos (../shared/data/content): style distance
as a share of the unchanged photo's (lower is better) and content preservation (noise beside it);
then the time of one training step of the quality and fast networks against the loss network, and
of the loss network alone, on this machine. Writes bench/results/style-<machine>.{md,json} and the
contact sheet bench/results/style-sheet.png (new models above old ones).
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from atelier_stylizer.networks import FAST, QUALITY, TransformerNet
from atelier_workshop.defaults import DEFAULT_MODELS, RECIPES, shipped_artifacts, style_image
from atelier_workshop.fidelity import held_out_photos, score, served
from atelier_workshop.sheet import Row, render
from atelier_workshop.training.evaluation import Fidelity
from atelier_workshop.training.loss_networks import LossNetwork, lite0
from bench.common import REPO, RESULTS, SHARED_CONTENT, machine, result_stem

# The last commit whose shipped models were trained against the random-feature loss network.
OLD_COMMIT = "66e60da"
OLD_FOLDER = "services/stylizer/atelier_stylizer/default_models"


def old_models(work: Path) -> dict[str, Path]:
    """The previous shipped artifacts, extracted from git: name to folder."""
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", OLD_COMMIT, OLD_FOLDER], cwd=REPO, capture_output=True, text=True
    )
    found: dict[str, Path] = {}
    for path in listing.stdout.split():
        target = work / Path(path).relative_to(OLD_FOLDER)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(["git", "show", f"{OLD_COMMIT}:{path}"], cwd=REPO, capture_output=True, check=True)
        target.write_bytes(blob.stdout)
        found[target.parent.parent.name] = target.parent
    return found


def step_seconds(network: LossNetwork, side: int, repeats: int = 3) -> dict[str, float]:
    """Median seconds of one training step (batch 4 at `side` px) per tier, and of the loss network alone."""
    timings: dict[str, float] = {}
    batch = torch.rand(4, 3, side, side)
    for name, architecture in (("quality", QUALITY), ("fast", FAST)):
        model = TransformerNet(architecture)
        optimizer = torch.optim.Adam(model.parameters())
        runs = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            loss = sum(features.pow(2).mean() for features in network(model(batch)))
            optimizer.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            optimizer.step()
            runs.append(time.perf_counter() - started)
        timings[f"{name}_step_s"] = round(sorted(runs[1:])[len(runs[1:]) // 2], 3)
    runs = []
    for _ in range(repeats + 1):
        image = batch.clone().requires_grad_(True)
        started = time.perf_counter()
        sum(features.pow(2).mean() for features in network(image)).backward()  # type: ignore[union-attr]
        runs.append(time.perf_counter() - started)
    timings["loss_network_forward_backward_s"] = round(sorted(runs[1:])[len(runs[1:]) // 2], 3)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", type=int, default=256, help="training crop side for the step timings")
    args = parser.parse_args()
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-style-"))
    photos = held_out_photos(SHARED_CONTENT)
    network = lite0()
    recipes = {recipe.style: recipe for recipe in RECIPES}
    old = old_models(work / "old")
    rows: list[tuple[str, str, Path, Path, Fidelity]] = []
    for folder in shipped_artifacts():
        name = folder.parent.name
        image = style_image(recipes[name.rsplit("-", 1)[0]], work, REPO.parent / "shared" / "data" / "styles")
        rows.append(("new", name, folder, image, score(folder, image, photos, network)))
        print(rows[-1][1], "new", rows[-1][4].record()["style_distance"], flush=True)
    for name, folder in sorted(old.items()):
        image = style_image(recipes[name.rsplit("-", 1)[0]], work, REPO.parent / "shared" / "data" / "styles")
        rows.append(("old", name, folder, image, score(folder, image, photos, network)))
        print(rows[-1][1], "old", rows[-1][4].record()["style_distance"], flush=True)
    timings = step_seconds(network, args.side)
    print(json.dumps(timings), flush=True)
    sheet = [
        Row(f"{name} ({kind})", image, served(folder)[1], fidelity) for kind, name, folder, image, fidelity in rows
    ]
    render(sheet, photos, RESULTS / "style-sheet.png", cell=184)
    write(info, rows, timings, args.side)


def write(
    info: dict[str, Any], rows: list[tuple[str, str, Path, Path, Fidelity]], timings: dict[str, float], side: int
) -> None:
    stem = result_stem("style", info)
    records = [{"models": kind, "name": name, **fidelity.record()} for kind, name, _, _, fidelity in rows]
    stem.with_suffix(".json").write_text(
        json.dumps({"machine": info, "models": records, "training": timings}, indent=2)
    )
    lines = [
        f"# Style fidelity benchmark ({info['date']})",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}. Produced by `make bench-style`.",
        f"Held-out photos: {', '.join(p['photo'] for p in records[0]['photos'])} (../shared/data/content and",
        "scikit-image's, never trained on), at 512 px: within both pools' working sides, so every model runs them at",
        "full size. Judge: ImageNet-trained",
        "EfficientNet-Lite0. Style distance: Gram statistics of the output against the style image's, as a share of",
        "the unchanged photo's (1.00 = no closer than the photo; lower is better). Content preservation: mean of",
        "content-feature correlation and edge correlation with the photo (1.00 = the photo itself); noise's beside it.",
        f"Old: the models shipped at {OLD_COMMIT} (random-feature loss network); new: {DEFAULT_MODELS.relative_to(REPO)}.",
        "",
        "| models | model | style distance | content preservation (noise) | per photo: style / content | gate |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, name, _, _, fidelity in rows:
        photos = "; ".join(f"{s.photo} {s.style:.2f} / {s.content:.2f}" for s in fidelity.photos)
        verdict = "passes" if fidelity.passed else "fails"
        lines.append(
            f"| {kind} | {name} | {fidelity.style:.2f} | {fidelity.content:.2f} ({fidelity.noise_content:.2f}) | {photos} | {verdict} |"
        )
    lines += [
        "",
        f"Training cost on this machine, batch 4 at {side} px (median seconds per step, against the loss network):",
        f"quality {timings['quality_step_s']} s, fast {timings['fast_step_s']} s; the loss network's own forward and",
        f"backward pass {timings['loss_network_forward_backward_s']} s.",
        "",
        "![contact sheet: new models above old ones](style-sheet.png)",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
