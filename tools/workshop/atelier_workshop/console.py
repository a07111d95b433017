"""What the workshop shows on the terminal: training progress."""

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from atelier_stylizer.registry import ModelManifest
from atelier_workshop.training.trainer import Progress as Step
from atelier_workshop.training.trainer import TrainSettings, train

console = Console()


def train_with_progress(settings: TrainSettings) -> ModelManifest:
    """Train with a progress bar (losses, images per second, time left)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[losses]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{settings.style}-{settings.tier}", total=settings.steps, losses="", rate="")

        def report(update: Step) -> None:
            losses = " ".join(f"{name} {value:.4g}" for name, value in update.losses.items())
            progress.update(task, completed=update.step, losses=losses, rate=f"{update.images_per_s:.1f} img/s")

        manifest = train(settings, report)
    console.print(f"wrote {manifest.ref} to {settings.out_dir}: {manifest.metrics.get('final_losses')}")
    return manifest
