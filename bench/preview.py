"""make bench (preview rows): upload to first preview rendition as an artist's client sees it, and the
idle stack's CPU.

The embedded stack as `make run` deploys it (shipped models at their working sides), brand acme,
1080x1080 JPEGs made from the photos in ../shared/data/content and the generated samples. The time is
from the POST's start to the first `GET /v1/assets/{id}` (polled every 20 ms) that shows the asset
exported, so it includes what a client pays to see the result. Rows:
- preview, cache hit: the same image again (the stylizer's result cache serves it);
- preview, not cached: a distinct image each time;
- preview under a production backlog: distinct images, one at a time, while production uploads
  submitted before them (and one a second during) keep the quality pool busy;
- idle: CPU time of every process of the stack (services, S3 endpoint, this process with the
  embedded Kafka cluster) over 60 s once started, before anything is submitted, as a share of one
  core.
Where the time goes: the median of each stage from the asset's timeline. Results:
bench/results/preview-<machine>.{md,json}; `--label` names a run (e.g. before/after a change) and
keeps the others' rows.
"""

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image, ImageOps

from atelier_devtools.local.samples import write_samples
from atelier_devtools.local.stack import EMBEDDED_BROKERS, EMBEDDED_PARTITIONS, LocalInfra
from bench.common import REPO, SHARED_CONTENT, machine, result_stem, start_stack

POLL_S = 0.02
READING = "## Reading"
STAGES = ("uploaded_at", "tagged_at", "routed_at", "stylized_at", "exported_at")


def jpegs(sources: list[Path], count: int, size: tuple[int, int] = (1080, 1080)) -> list[bytes]:
    """`count` distinct JPEGs of `size` (crops and mirrors of the sources)."""
    width, height = size
    made = []
    for index in range(count):
        image = ImageOps.exif_transpose(Image.open(sources[index % len(sources)])).convert("RGB")
        inset = index // len(sources) * 7
        scale = min((image.width - inset) / width, (image.height - inset) / height)
        box = (inset, inset, inset + round(width * scale), inset + round(height * scale))
        image = image.crop(box).resize(size, Image.Resampling.LANCZOS)
        if index // len(sources) % 2:
            image = ImageOps.mirror(image)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        made.append(buffer.getvalue())
    return made


class Client:
    """Uploads and polls the API directly (fine-grained polling; the CLI client polls every 0.3 s)."""

    def __init__(self, api: str, key: str) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {key}"}
        self.session = aiohttp.ClientSession()

    async def submit(self, data: bytes, tier: str, name: str) -> str:
        form = aiohttp.FormData()
        form.add_field("brand", "acme")
        form.add_field("tier", tier)
        form.add_field("file", data, filename=f"{name}.jpg", content_type="image/jpeg")
        async with self.session.post(f"{self.api}/v1/assets", data=form, headers=self.headers) as response:
            body = await response.json()
            if response.status != 202:
                raise RuntimeError(f"upload refused: {response.status} {body}")
            return str(body["asset_id"])

    async def final(self, asset_id: str, timeout_s: float = 300.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            async with self.session.get(f"{self.api}/v1/assets/{asset_id}", headers=self.headers) as response:
                if response.status == 200:
                    status: dict[str, Any] = await response.json()
                    if status.get("stage") in ("exported", "failed"):
                        return status
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"asset {asset_id} not final after {timeout_s} s")

    async def preview(self, data: bytes, name: str) -> dict[str, Any]:
        """One preview: the client's time to seeing it exported, and the stages from its timeline."""
        begun, posted_at = time.perf_counter(), datetime.now(UTC)
        asset_id = await self.submit(data, "preview", name)
        status = await self.final(asset_id)
        seen_ms, seen_at = (time.perf_counter() - begun) * 1e3, datetime.now(UTC)
        if status["stage"] != "exported":
            raise RuntimeError(f"preview {asset_id} failed: {status.get('failure')}")
        timeline = {
            "posted_at": posted_at,
            **{stage: datetime.fromisoformat(status["timeline"][stage]) for stage in STAGES},
            "seen_at": seen_at,
        }
        gaps = {
            f"{first.removesuffix('_at')}->{second.removesuffix('_at')}": (
                timeline[second] - timeline[first]
            ).total_seconds()
            * 1e3
            for first, second in zip(list(timeline), list(timeline)[1:], strict=False)
        }
        stylized = status.get("stylized") or {}
        return {
            "seen_ms": seen_ms,
            "cache_hit": bool(stylized.get("cache_hit")),
            "inference_ms": float((stylized.get("timings") or {}).get("inference_ms", 0.0)),
            "renditions": len(status.get("renditions") or []),
            **gaps,
        }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    seen = [run["seen_ms"] for run in runs]
    gaps = [key for key in runs[0] if "->" in key]
    return {
        "row": name,
        "n": len(runs),
        "p50_ms": round(percentile(seen, 0.5)),
        "p95_ms": round(percentile(seen, 0.95)),
        "p99_ms": round(percentile(seen, 0.99)),
        "cache_hits": sum(run["cache_hit"] for run in runs),
        "median_inference_ms": round(statistics.median(run["inference_ms"] for run in runs)),
        "renditions": max(run["renditions"] for run in runs),
        "median_stage_ms": {gap: round(statistics.median(run[gap] for run in runs)) for gap in gaps},
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(processes: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over `seconds` with nothing submitted, as a share of one core."""
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    time.sleep(seconds)
    return {name: round((cpu_seconds(pid) - before[name]) / seconds, 3) for name, pid in processes.items()}


async def measure(client: Client, images: list[bytes], counts: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    repeat = images[0]
    await client.preview(repeat, "warm")  # Models load, the cache holds this image from now on.
    rows.append(summary("preview, cache hit", [await client.preview(repeat, "hit") for _ in range(counts["hit"])]))
    fresh = iter(images[1:])
    rows.append(
        summary("preview, not cached", [await client.preview(next(fresh), "new") for _ in range(counts["new"])])
    )
    backlog = [await client.submit(next(fresh), "production", "backlog") for _ in range(counts["backlog"])]
    runs = []
    for _ in range(counts["new"]):
        runs.append(await client.preview(next(fresh), "busy"))
        backlog.append(await client.submit(next(fresh), "production", "backlog"))
    pending = [await client.final(asset_id, 600) for asset_id in backlog]
    if any(status["stage"] != "exported" for status in pending):
        raise RuntimeError("a production asset of the backlog failed")
    rows.append(summary(f"preview under a production backlog ({counts['backlog']} queued first)", runs))
    return rows


async def previews(api: str, key: str, images: list[bytes], counts: dict[str, int]) -> list[dict[str, Any]]:
    client = Client(api, key)
    try:
        return await measure(client, images, counts)
    finally:
        await client.session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="current", help="name of this run in the results (e.g. before, after)")
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=8)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--idle-only", action="store_true", help="only the idle row (a quick check)")
    parser.add_argument("--preview-fetch-wait-ms", type=int, help="instead of what `atelier local` sets")
    parser.add_argument("--brokers", type=int, default=EMBEDDED_BROKERS, help="brokers of the embedded cluster")
    parser.add_argument("--partitions", type=int, default=EMBEDDED_PARTITIONS, help="partitions of each topic")
    parser.add_argument("--mock-waits", action="store_true", help="clients on the mock itself, without long polling")
    args = parser.parse_args()
    info = machine()
    workdir = REPO / ".atelier" / "bench-preview"
    shutil.rmtree(workdir, ignore_errors=True)
    sources = write_samples(workdir / "images") + (sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else [])
    images = jpegs(sources, 1 + 3 * args.new + args.backlog)
    infra = LocalInfra(workdir, brokers=args.brokers, partitions=args.partitions, long_polling=not args.mock_waits)
    infra.start()
    services = None
    try:
        wait = args.preview_fetch_wait_ms
        extra = {"ATELIER_KAFKA_PREVIEW_FETCH_WAIT_MS": str(wait)} if wait else None
        services, _settings, key = start_stack(infra, workdir, environment=extra)
        time.sleep(10)  # Let the stack settle (group joins, first reports) before the idle sample.
        processes = {name: services.pid(name) for name in services.specs}
        processes |= {"s3 endpoint": infra.s3.pid, "kafka cluster (this process)": os.getpid()}
        shares = idle_cpu(processes, args.idle_s)
        total = round(sum(shares.values()), 3)
        idle = {"row": f"idle stack, {args.idle_s:.0f} s", "cpu_share_of_one_core": total, "per_process": shares}
        counts = {"hit": args.hits, "new": args.new, "backlog": args.backlog}
        rows = ([] if args.idle_only else asyncio.run(previews(services.api_url(), key, images, counts))) + [idle]
        print(json.dumps(rows, indent=2))
    finally:
        if services is not None:
            services.stop_all()
        infra.stop()
    if not args.idle_only:
        write(info, args.label, rows)


def write(info: dict[str, Any], label: str, rows: list[dict[str, Any]]) -> None:
    stem = result_stem("preview", info)
    path = stem.with_suffix(".json")
    runs = json.loads(path.read_text())["runs"] if path.is_file() else {}
    runs[label] = {"machine": info, "rows": rows}
    path.write_text(json.dumps({"runs": runs}, indent=2))
    lines = [
        "# Preview benchmark",
        "",
        "Produced by `make bench` (bench/preview.py): upload to first preview rendition as a client polling",
        "`GET /v1/assets/{id}` every 20 ms sees it, brand acme, 1080x1080 JPEGs, one at a time. p99 of ten",
        "or twenty is close to the maximum. Stage medians are from the asset's timeline.",
        "",
    ]
    for name, run in runs.items():
        machine_info = run["machine"]
        lines += [
            f"## {name} ({machine_info['date']}, {machine_info['cpu']}, {machine_info['cores']} cores)",
            "",
            "| row | n | p50 ms | p95 ms | p99 ms | cache hits | inference ms (median) | renditions | stage medians ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in run["rows"]:
            if "cpu_share_of_one_core" in row:
                shares = ", ".join(f"{name} {share:.1%}" for name, share in row.get("per_process", {}).items())
                lines += ["", f"Idle: {row['row']}: **{row['cpu_share_of_one_core']:.1%} of one core** ({shares}).", ""]
                continue
            stages = ", ".join(f"{gap} {ms}" for gap, ms in row["median_stage_ms"].items())
            lines.append(
                f"| {row['row']} | {row['n']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                f"{row['cache_hits']} | {row['median_inference_ms']} | {row['renditions']} | {stages} |"
            )
    previous = stem.with_suffix(".md").read_text() if stem.with_suffix(".md").is_file() else ""
    reading = previous[previous.index(READING) :] if READING in previous else ""  # Written by hand: kept.
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n" + (f"\n{reading}" if reading else ""))


if __name__ == "__main__":
    main()
