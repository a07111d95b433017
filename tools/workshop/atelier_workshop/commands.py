"""`atelier train` and `atelier models ...`: training, publishing, listing, reproducing defaults."""

import argparse
import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from atelier_shared import ObjectStore, load_settings
from atelier_stylizer.registry import ModelRegistry
from atelier_stylizer.settings import StylizerSettings
from atelier_workshop.defaults import DEFAULT_MODELS, RECIPES, Recipe, shipped_artifacts

console = Console()


def _registry(url: str | None) -> ModelRegistry:
    settings = load_settings(StylizerSettings)
    target = url or settings.registry_url
    store = ObjectStore(settings) if target.startswith("s3://") else None
    return ModelRegistry.open(target, store, settings.model_cache_dir)


def _train_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    train = sub.add_parser("train", help="train a style model from a style image and a folder of content images")
    train.add_argument("--style", type=Path, required=True, help="the style image")
    train.add_argument("--content", type=Path, required=True, help="folder of content images (jpg, png, webp)")
    train.add_argument("--name", required=True, help="style name; the model is <name>-<tier>")
    train.add_argument("--tier", choices=["quality", "fast"], default="quality")
    train.add_argument("--out", type=Path, help="artifact folder (default .atelier/training/<name>-<tier>)")
    train.add_argument("--version", type=int, default=1)
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--image-size", type=int, default=192, help="training crop size in pixels")
    train.add_argument("--style-size", type=int, default=256, help="shorter side of the style image (texture scale)")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--content-weight", type=float, default=1.0)
    train.add_argument("--style-weight", type=float, default=20.0)
    train.add_argument(
        "--style-statistics",
        choices=["covariance", "gram"],
        default="covariance",
        help="match centred Gram matrices plus means (default) or plain Gram matrices",
    )
    train.add_argument("--tv-weight", type=float, default=1e-3)
    train.add_argument("--loss-network", choices=["random", "vgg16"], default="random")
    train.add_argument("--vgg-weights", type=Path, help="torchvision vgg16 state dict file (for --loss-network vgg16)")
    train.add_argument("--distill-from", type=Path, help="quality artifact folder to distil this (fast) model from")
    train.add_argument("--working-side", type=int, default=0, help="side the pool runs it at (default 1024/512)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument(
        "--publish", metavar="REGISTRY", help="publish to this registry (s3://bucket or folder) when done"
    )


def _models_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    models = sub.add_parser("models", help="publish, list and reproduce models")
    actions = models.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="publish artifact folders to the registry")
    publish.add_argument("folders", type=Path, nargs="*", help="artifact folders (default: the shipped defaults)")
    publish.add_argument("--registry", help="s3://bucket[/prefix] or a folder (default: the configured registry)")
    listing = actions.add_parser("list", help="list the registry's models")
    listing.add_argument("names", nargs="+", help="model names, e.g. tiles-quality")
    listing.add_argument("--registry")
    quantize = actions.add_parser("quantize", help="add a measured INT8 graph to an artifact (before publishing)")
    quantize.add_argument("folder", type=Path)
    quantize.add_argument("--calibration", type=Path, required=True, help="folder of calibration images")
    quantize.add_argument("--evaluation", type=Path, required=True, help="folder of held-out images for the PSNR gate")
    quantize.add_argument("--side", type=int, default=256, help="longest side images are measured at")
    defaults = actions.add_parser("make-defaults", help="reproduce the shipped default models (takes a while on CPU)")
    defaults.add_argument("--work", type=Path, default=Path(".atelier/make-models"))
    defaults.add_argument("--steps-scale", type=float, default=1.0, help="scale every recipe's steps (quick trials)")


def run_training(args: argparse.Namespace) -> Path:
    """Train with a progress bar; the artifact folder."""
    from atelier_workshop.training.trainer import TrainSettings, train

    out = args.out or Path(".atelier/training") / f"{args.name}-{args.tier}"
    settings = TrainSettings(
        style=args.name,
        style_image=args.style,
        content_dir=args.content,
        out_dir=out,
        tier=args.tier,
        version=args.version,
        steps=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        style_size=args.style_size,
        learning_rate=args.lr,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        loss_network=args.loss_network,
        style_statistics=args.style_statistics,
        vgg_weights=args.vgg_weights,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        working_side=args.working_side,
        teacher=args.distill_from,
        provenance=getattr(args, "provenance", {}) or {"style_image": str(args.style), "content": str(args.content)},
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[losses]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{args.name}-{args.tier}", total=args.steps, losses="", rate="")

        def report(update: object) -> None:
            losses = " ".join(f"{name} {value:.4g}" for name, value in update.losses.items())  # type: ignore[attr-defined]
            progress.update(task, completed=update.step, losses=losses, rate=f"{update.images_per_s:.1f} img/s")  # type: ignore[attr-defined]

        manifest = train(settings, report)
    console.print(f"wrote {manifest.ref} to {out}: {manifest.metrics}")
    if args.publish:
        asyncio.run(_registry(args.publish).publish(out))
        console.print(f"published {manifest.ref} to {args.publish}")
    return out


def _recipe_arguments(recipe: Recipe, style_image: Path, content: Path, commit: str) -> dict[str, Any]:
    """The `atelier train` arguments a recipe's models share."""
    provenance = {
        "style_image": f"procedural: atelier_workshop.training.procedural.STYLES[{recipe.style!r}]()",
        "content": "procedural: write_content(count=400, size=320, seed=0)",
        "recipe": f"atelier_workshop.defaults.RECIPES ({recipe})",
        "made_with": "atelier models make-defaults",
        "source_commit": commit or "unknown",
    }
    return dict(
        name=recipe.style,
        style=style_image,
        content=content,
        version=1,
        batch_size=4,
        image_size=recipe.image_size,
        style_size=recipe.style_size,
        lr=1e-3,
        content_weight=1.0,
        style_weight=recipe.style_weight,
        tv_weight=1e-3,
        loss_network="random",
        vgg_weights=None,
        style_statistics="covariance",
        seed=0,
        checkpoint_every=200,
        working_side=0,
        publish=None,
        provenance=provenance,
    )


def make_defaults(work: Path, steps_scale: float) -> None:
    """Reproduce the shipped default models from procedural style and content images."""
    from atelier_workshop.artifacts import repackage
    from atelier_workshop.training.procedural import STYLES, write_content

    content = work / "content"
    if not content.is_dir():
        console.print("writing 400 procedural content scenes")
        write_content(content, 400, size=320, seed=0)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for recipe in RECIPES:
        style_image = work / "styles" / f"{recipe.style}.png"
        style_image.parent.mkdir(parents=True, exist_ok=True)
        STYLES[recipe.style]().save(style_image)
        common = _recipe_arguments(recipe, style_image, content, commit)
        quality = run_training(
            argparse.Namespace(
                **common,
                tier="quality",
                steps=max(1, int(recipe.quality_steps * steps_scale)),
                out=work / f"{recipe.style}-quality",
                distill_from=None,
            )
        )
        fast = run_training(
            argparse.Namespace(
                **common,
                tier="fast",
                steps=max(1, int(recipe.fast_steps * steps_scale)),
                out=work / f"{recipe.style}-fast",
                distill_from=quality,
            )
        )
        for folder in (quality, fast):
            target = DEFAULT_MODELS / folder.name / "1"
            manifest = repackage(folder, target)
            megabytes = sum((target / name).stat().st_size for name in manifest.files) / 1e6
            console.print(f"shipped {manifest.ref} ({megabytes:.2f} MB)")


def train(argv: list[str]) -> int:
    """`atelier train ...`."""
    return main(["train", *argv])


def models(argv: list[str]) -> int:
    """`atelier models ...`."""
    return main(["models", *argv])


def main(argv: list[str]) -> int:
    """Entry point for `atelier train ...` and `atelier models ...`."""
    parser = argparse.ArgumentParser(prog="atelier")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _models_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        run_training(args)
    elif args.action == "publish":
        registry = _registry(args.registry)
        folders = args.folders or shipped_artifacts()
        if not folders:
            raise SystemExit(f"nothing to publish: no folders given and no shipped models under {DEFAULT_MODELS}")
        for folder in folders:
            manifest = asyncio.run(registry.publish(folder))
            console.print(f"published {manifest.ref}")
    elif args.action == "list":
        registry = _registry(args.registry)
        table = Table("model", "versions", "latest tier", "loss network", "metrics")
        for name in args.names:
            versions = asyncio.run(registry.versions(name))
            latest = asyncio.run(registry.manifest(name, versions[-1])) if versions else None
            table.add_row(
                name,
                ", ".join(map(str, versions)) or "-",
                latest.tier if latest else "-",
                latest.loss_network if latest else "-",
                str(latest.metrics.get("style_check", "")) if latest else "",
            )
        console.print(table)
    elif args.action == "quantize":
        from atelier_workshop.quantization import add_int8, load_images

        def images(folder: Path) -> list:  # type: ignore[type-arg]
            return load_images(
                sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}), args.side
            )

        result = add_int8(args.folder, images(args.calibration), images(args.evaluation))
        console.print(result.record())
    elif args.action == "make-defaults":
        make_defaults(args.work, args.steps_scale)
        shutil.rmtree(DEFAULT_MODELS / "__pycache__", ignore_errors=True)
    return 0
