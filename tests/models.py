"""Small models made for tests through the real artifact and registry paths (no training)."""

import asyncio
from pathlib import Path

import torch

from atelier_shared import ObjectStore
from atelier_stylizer.networks import Architecture, TransformerNet
from atelier_stylizer.registry import ModelManifest, ModelRegistry
from atelier_workshop.artifacts import write_artifact

TINY = Architecture(channels=(8, 16, 16), residual_blocks=1)


def make_model(
    folder: Path, style: str, tier: str, version: int = 1, seed: int = 0, with_onnx: bool = False
) -> ModelManifest:
    """A randomly initialised tiny network written as a registry artifact."""
    torch.manual_seed(seed)
    network = TransformerNet(TINY).eval()
    return write_artifact(
        network,
        folder,
        style=style,
        tier=tier,
        version=version,
        working_side=128,
        with_onnx=with_onnx,
        provenance={"made_by": "tests (random initialisation, untrained)"},
    )


def publish_models(folders: list[Path], store: ObjectStore, bucket: str, cache: Path) -> None:
    """Publish artifact folders into an S3 registry."""
    registry = ModelRegistry.open(f"s3://{bucket}", store, cache)

    async def publish_all() -> None:
        for folder in folders:
            await registry.publish(folder)

    asyncio.run(publish_all())


def make_and_publish(
    root: Path, store: ObjectStore, bucket: str, styles: tuple[str, ...] = ("brush", "tiles", "udnie")
) -> None:
    """Tiny quality and fast models for each style, published."""
    folders = []
    for style in styles:
        for tier in ("quality", "fast"):
            folder = root / f"{style}-{tier}"
            make_model(folder, style, tier)
            folders.append(folder)
    publish_models(folders, store, bucket, root / "cache")
