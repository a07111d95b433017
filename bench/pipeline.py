"""make bench: the whole pipeline on the embedded stack, as `make run` deploys it.

A fixed set of images (the generated samples, plus the photos in ../shared/data/content when
present) goes through twice: one at a time (unloaded latency), then all at once (latency under a
burst, and throughput). Per asset: upload to exported latency, and the share of it spent outside
the model (everything but inference). Results: bench/results/pipeline-<machine>.{md,json}.
"""

import argparse
import asyncio
import json
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from atelier_client.client import AtelierClient, Submission
from atelier_devtools.local.samples import write_samples
from atelier_devtools.local.stack import LocalInfra
from bench.common import REPO, SHARED_CONTENT, machine, result_stem, start_stack, variants

# Opens a client of the API with a key (the admin key: every brand).
Connect = Callable[[], AtelierClient]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run_set(connect: Connect, images: list[Path], together: bool) -> list[dict[str, Any]]:
    """Submit (all at once, or each after the previous finished) and collect final statuses."""
    async with connect() as client:
        submissions = []
        for path in images:
            submission = Submission(path)
            submission.asset_id = await client.submit(path, "acme", "production")
            submissions.append(submission)
            if not together:
                await client.wait([submission], 600)
        await client.wait(submissions, 900)
    return [s.status for s in submissions]


def summarise(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [s["stage_ms"]["total"] for s in statuses]
    inference = [s["stylized"]["timings"]["inference_ms"] for s in statuses]
    outside = [1 - i / t for i, t in zip(inference, totals, strict=True)]
    first = min(datetime.fromisoformat(s["timeline"]["uploaded_at"]) for s in statuses)
    last = max(datetime.fromisoformat(s["timeline"]["exported_at"]) for s in statuses)
    return {
        "assets": len(statuses),
        "exported": sum(1 for s in statuses if s["stage"] == "exported"),
        "p50_ms": round(percentile(totals, 0.5)),
        "p95_ms": round(percentile(totals, 0.95)),
        "throughput_per_min": round(len(statuses) / (last - first).total_seconds() * 60, 1),
        "median_share_outside_model": round(statistics.median(outside), 3),
        "median_inference_ms": round(statistics.median(inference)),
        "per_stage_median_ms": {
            stage: round(statistics.median(s["stage_ms"][stage] for s in statuses))
            for stage in ("tag", "route", "stylize", "export")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="how many times the image set goes in the burst")
    args = parser.parse_args()
    info = machine()
    workdir = REPO / ".atelier" / "bench-pipeline"
    shutil.rmtree(workdir, ignore_errors=True)
    images = write_samples(workdir / "images") + (sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else [])
    burst_images = variants(images, args.repeat, workdir / "burst")
    infra = LocalInfra(workdir)
    infra.start()
    services = None
    try:
        services, _settings, key = start_stack(infra, workdir)
        connect = partial(AtelierClient, services.api_url(), key)
        asyncio.run(run_set(connect, images[:1], together=False))  # Warm-up: models load, caches fill.
        started = time.monotonic()
        unloaded = summarise(asyncio.run(run_set(connect, images, together=False)))
        burst = summarise(asyncio.run(run_set(connect, burst_images, together=True)))
        print(
            json.dumps({"unloaded": unloaded, "burst": burst, "seconds": round(time.monotonic() - started)}, indent=2)
        )
    finally:
        if services is not None:
            services.stop_all()
        infra.stop()
    write(info, len(images), len(burst_images), unloaded, burst)


def write(info: dict[str, Any], count: int, burst_count: int, unloaded: dict[str, Any], burst: dict[str, Any]) -> None:
    stem = result_stem("pipeline", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "unloaded": unloaded, "burst": burst}, indent=2))
    rows = [("one at a time", unloaded), ("burst", burst)]
    lines = [
        f"# Pipeline benchmark ({info['date']})",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}. Produced by `make bench`: the",
        "embedded stack as `make run` deploys it (shipped models, quality pool at the model's working side),",
        f"{count} images (generated samples and the photos in ../shared/data/content) one at a time, then",
        f"{burst_count} distinct variants of them (mirrored, cropped: no cache hits) at once; production tier, brand acme.",
        "",
        "| load | assets | p50 upload to exported (ms) | p95 (ms) | throughput (assets/min) | median share outside the model | median inference (ms) | median tag / route / stylize / export (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows:
        stages = r["per_stage_median_ms"]
        lines.append(
            f"| {name} | {r['assets']} | {r['p50_ms']} | {r['p95_ms']} | {r['throughput_per_min']} | "
            f"{r['median_share_outside_model']:.1%} | {r['median_inference_ms']} | "
            f"{stages['tag']} / {stages['route']} / {stages['stylize']} / {stages['export']} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
