"""What every benchmark records (the machine it ran on), and the stack the pipeline benchmarks deploy."""

import asyncio
import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from atelier_devtools.local.stack import LocalInfra, LocalServices
from atelier_shared import AtelierSettings
from atelier_shared.settings import settings_from
from atelier_shared.storage import ObjectStore
from atelier_uploader.keys import ADMIN

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# The handbook's test data beside the checkout (never committed); benchmarks run without it too.
SHARED_CONTENT = REPO.parent / "shared" / "data" / "content"


def machine() -> dict[str, Any]:
    """Date, CPU model, cores, GPU and library versions."""
    import onnxruntime
    import torch

    from atelier_stylizer.precision import hardware_id

    cpu = ""
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "hardware_id": hardware_id(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def result_stem(name: str, info: dict[str, Any]) -> Path:
    """bench/results/<name>-<cpu|gpu>-<cores>core (without suffix)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}-{'gpu' if info['gpu'] else 'cpu'}-{info['cores']}core"


def variants(images: list[Path], copies: int, folder: Path) -> list[Path]:
    """`copies` distinct versions of each image (mirrored, cropped): no result comes from the cache."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for copy in range(copies):
        for path in images:
            image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            if copy % 2:
                image = ImageOps.mirror(image)
            inset = copy // 2 + 1
            image = image.crop((inset, inset, image.width - inset, image.height - inset))
            target = folder / f"{copy}-{path.stem}.png"
            image.save(target)
            made.append(target)
    return made


def start_stack(
    infra: LocalInfra,
    workdir: Path,
    prefix: str = "bench.",
    brands: Path = REPO / "deploy" / "brands",
    environment: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[LocalServices, AtelierSettings, str]:
    """A deployment under `prefix` on the embedded infrastructure as `make run` deploys it (plus
    `environment`, and `overrides` per service): topics and buckets provisioned, the shipped models
    published, an admin key made and every service started and ready (or none left running). The key comes first: the uploader
    loads keys as it starts (a key made after, as bench.pipeline once did, was refused with 401)."""
    variables = {
        **infra.environment(prefix, prefix.replace(".", "-")),
        "ATELIER_BRANDS_DIR": str(brands),
        "ATELIER_MODEL_CACHE_DIR": str(workdir / "model-cache"),
        "OTEL_TRACES_EXPORTER": "none",
        **(environment or {}),
    }
    settings = settings_from(AtelierSettings, variables)
    infra.provision(settings)
    from atelier_stylizer.registry import ModelRegistry  # PyTorch, for the benchmarks that deploy only.
    from atelier_workshop.defaults import publish_defaults

    registry = ModelRegistry.open(f"s3://{settings.bucket_models}", ObjectStore(settings), workdir / "cache")
    asyncio.run(publish_defaults(registry))
    key = infra.create_keys(settings)[ADMIN]
    services = LocalServices(variables, workdir / "logs" / prefix.strip("."), overrides=overrides, cwd=workdir)
    services.start_ready()
    return services, settings, key
