"""`atelier train` and `atelier models ...`: training, scoring, publishing, listing, reproducing the defaults."""

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from atelier_shared import ObjectStore, load_settings
from atelier_stylizer.registry import ModelRegistry
from atelier_stylizer.settings import StylizerSettings
from atelier_workshop.console import console, train_with_progress
from atelier_workshop.defaults import DEFAULT_MODELS, RECIPES, make_defaults, shipped_artifacts, style_image
from atelier_workshop.lite0 import export_classifier
from atelier_workshop.training.trainer import TrainSettings

# Held-out photos and style images beside the checkout (the handbook's data), the defaults of the commands.
PHOTOS = Path("../shared/data/content")
STYLES = Path("../shared/data/styles")


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
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--image-size", type=int, default=192, help="training crop size in pixels")
    train.add_argument("--style-size", type=int, default=256, help="shorter side of the style image (texture scale)")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--content-weight", type=float, default=1.0)
    train.add_argument("--style-weight", type=float, default=1.0)
    train.add_argument("--style-statistics", choices=["gram", "covariance"], default="gram")
    train.add_argument("--tv-weight", type=float, default=1e-3)
    train.add_argument("--range-weight", type=float, default=10.0, help="penalty on outputs outside 0..1")
    train.add_argument("--loss-network", choices=["lite0", "vgg16"], default="lite0")
    train.add_argument("--loss-weights", type=Path, help="the loss network's weights (required for vgg16)")
    train.add_argument("--distill-from", type=Path, help="quality artifact folder to distil this (fast) model from")
    train.add_argument("--working-side", type=int, default=0, help="side the pool runs it at (default 1024/512)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument("--publish", metavar="REGISTRY", help="publish to this registry (s3://bucket or folder)")


def _models_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    models = sub.add_parser("models", help="publish, list, score and reproduce models")
    actions = models.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="publish artifact folders to the registry")
    publish.add_argument("folders", type=Path, nargs="*", help="artifact folders (default: the shipped defaults)")
    publish.add_argument("--registry", help="s3://bucket[/prefix] or a folder (default: the configured registry)")
    listing = actions.add_parser("list", help="list the registry's models")
    listing.add_argument("names", nargs="+", help="model names, e.g. tiles-quality")
    listing.add_argument("--registry")
    for name, what in (("evaluate", "score models on held-out photos"), ("sheet", "render a contact sheet")):
        action = actions.add_parser(name, help=what)
        action.add_argument("models", nargs="+", help="artifact folders, or shipped model names (e.g. udnie-quality)")
        action.add_argument("--style", type=Path, help="the style image (default: a shipped model's own)")
        action.add_argument("--content", type=Path, default=PHOTOS, help="held-out photos")
        action.add_argument("--styles", type=Path, default=STYLES, help="where shipped models' style images are")
    actions.choices["evaluate"].add_argument("--record", action="store_true", help="write the scores into manifests")
    actions.choices["sheet"].add_argument("--out", type=Path, default=Path("out/contact-sheet.png"))
    quantize = actions.add_parser("quantize", help="add a measured INT8 graph to an artifact (before publishing)")
    quantize.add_argument("folder", type=Path)
    quantize.add_argument("--calibration", type=Path, required=True, help="folder of calibration images")
    quantize.add_argument("--evaluation", type=Path, required=True, help="folder of held-out images for the PSNR gate")
    quantize.add_argument("--side", type=int, default=256, help="longest side images are measured at")
    classifier = actions.add_parser("export-classifier", help="the tagger's ImageNet classifier as ONNX (seconds)")
    classifier.add_argument("--out", type=Path, default=Path(".atelier/classifier"))
    defaults = actions.add_parser("make-defaults", help="reproduce, score and gate the shipped models (hours on CPU)")
    defaults.add_argument("--work", type=Path, default=Path(".atelier/make-models"))
    defaults.add_argument("--steps-scale", type=float, default=1.0, help="scale every recipe's steps (quick trials)")
    defaults.add_argument("--content", type=Path, default=PHOTOS, help="held-out photos for the gate")
    defaults.add_argument("--styles", type=Path, default=STYLES, help="folder holding the style images of recipes")


def _train(args: argparse.Namespace) -> None:
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
        range_weight=args.range_weight,
        loss_network=args.loss_network,
        style_statistics=args.style_statistics,
        loss_weights=args.loss_weights,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        working_side=args.working_side,
        teacher=args.distill_from,
        provenance={"style_image": str(args.style), "content": str(args.content)},
    )
    manifest = train_with_progress(settings)
    if args.publish:
        asyncio.run(_registry(args.publish).publish(out))
        console.print(f"published {manifest.ref} to {args.publish}")


def _publish(args: argparse.Namespace) -> None:
    registry = _registry(args.registry)
    folders = args.folders or shipped_artifacts()
    if not folders:
        raise SystemExit(f"nothing to publish: no folders given and no shipped models under {DEFAULT_MODELS}")
    for folder in folders:
        console.print(f"published {asyncio.run(registry.publish(folder)).ref}")


def _list(args: argparse.Namespace) -> None:
    registry = _registry(args.registry)
    table = Table("model", "versions", "latest tier", "loss network", "style distance", "content")
    for name in args.names:
        versions = asyncio.run(registry.versions(name))
        latest = asyncio.run(registry.manifest(name, versions[-1])) if versions else None
        fidelity = latest.metrics.get("fidelity", {}) if latest else {}
        table.add_row(
            name,
            ", ".join(map(str, versions)) or "-",
            latest.tier if latest else "-",
            latest.loss_network if latest else "-",
            str(fidelity.get("style_distance", "-")),
            str(fidelity.get("content_preservation", "-")),
        )
    console.print(table)


def _quantize(args: argparse.Namespace) -> None:
    from atelier_workshop.quantization import add_int8, load_images

    def images(folder: Path) -> list:  # type: ignore[type-arg]
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
        return load_images(paths, args.side)

    console.print(add_int8(args.folder, images(args.calibration), images(args.evaluation)).record())


def _make_defaults(args: argparse.Namespace) -> None:
    from atelier_workshop.fidelity import report

    results = make_defaults(args.work, args.steps_scale, args.styles, args.content)
    console.print(report(results))


def _models_and_styles(args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    """(name, artifact folder, style image) for each model named on the command line."""
    recipes = {recipe.style: recipe for recipe in RECIPES}
    chosen = []
    for model in args.models:
        folder = Path(model)
        if not folder.is_dir():
            matches = [path for path in shipped_artifacts() if path.parent.name == model]
            if not matches:
                raise SystemExit(f"{model} is neither an artifact folder nor a shipped model")
            folder = matches[-1]
        style = args.style
        if style is None:
            recipe = recipes.get(folder.parent.name.rsplit("-", 1)[0])
            if recipe is None:
                raise SystemExit(f"give --style: {model} is not a shipped model, so its style image is unknown")
            style = style_image(recipe, Path(".atelier/styles"), args.styles)
        chosen.append((folder.parent.name, folder, style))
    return chosen


def _evaluate(args: argparse.Namespace) -> None:
    from atelier_workshop.fidelity import held_out_photos, record, report, score

    photos = held_out_photos(args.content)
    results = []
    for name, folder, style in _models_and_styles(args):
        fidelity = score(folder, style, photos)
        if args.record:
            record(folder, fidelity)
        results.append((name, fidelity))
    console.print(report(results))


def _sheet(args: argparse.Namespace) -> None:
    from atelier_workshop.fidelity import held_out_photos, score, served
    from atelier_workshop.sheet import Row, render

    photos = held_out_photos(args.content)
    rows = [
        Row(name, style, served(folder)[1], score(folder, style, photos))
        for name, folder, style in _models_and_styles(args)
    ]
    render(rows, photos, args.out)
    console.print(f"wrote {args.out}")


def _export_classifier(args: argparse.Namespace) -> None:
    console.print(f"wrote {export_classifier(args.out)}")


_ACTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "publish": _publish,
    "list": _list,
    "quantize": _quantize,
    "evaluate": _evaluate,
    "sheet": _sheet,
    "make-defaults": _make_defaults,
    "export-classifier": _export_classifier,
}


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
        _train(args)
    else:
        _ACTIONS[args.action](args)
    return 0
