"""The status view's retention pass on a large table (`make bench-status`).

The view folds events and answers reads on one event loop, and its prune pass runs on that loop
too: this measures how long a pass over a table of N documents takes when half of them are past
retention, and the longest the loop waited meanwhile (a 1 ms ticker's worst lateness). The view
runs against the embedded Kafka-protocol broker; its table is filled directly with documents as the
fold writes them. Writes bench/results/status-<cpu|gpu>-<cores>core.{md,json}.
"""

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from atelier_devtools.local.stack import LocalInfra
from atelier_shared import events, topics
from atelier_shared.settings import settings_from
from atelier_shared.status import merge_status
from atelier_status.settings import StatusSettings
from atelier_status.view import RETENTION, StatusView
from bench.common import machine, result_stem

TABLE_SIZES = (20_000, 100_000)
ROUNDS = 3
DAY_MS = 86_400_000.0


def document(asset_id: str, partitions: int, changed_ms: float) -> dict[str, Any]:
    """A status document as the view stores it once an asset is uploaded and tagged."""
    header = events.AssetHeader(asset_id=asset_id, brand="acme", tier=events.TIER_PRODUCTION)
    header.source_uri = f"s3://atelier-inbox/acme/{asset_id}.jpg"
    header.timeline.uploaded_at.CopyFrom(events.now_timestamp())
    header.timeline.tagged_at.CopyFrom(events.now_timestamp())
    status = merge_status(None, topics.UPLOADED, events.AssetUploaded(asset=header))
    tags = events.AssetTagged(asset=header)
    tags.tags.labels.extend(["portrait", "outdoor", "warm light"])
    status = merge_status(status, topics.TAGGED, tags)
    status[RETENTION] = {"partition": hash(asset_id) % partitions, "changed_ms": changed_ms}
    return status


async def loop_lateness(stop: asyncio.Event, worst: list[float]) -> None:
    """Tick every millisecond; record how late the worst tick was (ms)."""
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.001)
        worst.append((time.perf_counter() - began) * 1000 - 1)


async def pass_over(view: StatusView, size: int, partitions: int) -> dict[str, float]:
    """Fill the table with `size` documents, half past retention; time one prune pass."""
    now_ms = time.time() * 1000
    for index in range(size):
        changed = now_ms - (40 if index % 2 else 1) * DAY_MS
        view.table.data[f"asset-{index}"] = document(f"asset-{index}", partitions, changed)
    stop, lateness = asyncio.Event(), [0.0]
    ticker = asyncio.create_task(loop_lateness(stop, lateness))
    await asyncio.sleep(0)  # The ticker waits on its first tick before the pass begins.
    began = time.perf_counter()
    pruned = await view.prune(now_ms - 30 * DAY_MS)
    seconds = time.perf_counter() - began
    await view.app.producer.flush()  # The tombstones are produced on the same loop: their cost counts too.
    flushed = time.perf_counter() - began
    stop.set()
    await ticker
    left = len(view.table.data)
    view.table.data.clear()
    return {"pruned": pruned, "left": left, "seconds": seconds, "flushed": flushed, "worst_loop_wait_ms": max(lateness)}


async def measure(settings: StatusSettings) -> list[dict[str, Any]]:
    view = StatusView(settings)
    await view.start()
    try:
        async with asyncio.timeout(120):
            while not view.ready:
                await asyncio.sleep(0.1)
        rows = []
        for size in TABLE_SIZES:
            runs = [await pass_over(view, size, settings.topic_partitions) for _ in range(ROUNDS)]
            rows.append(
                {
                    "documents": size,
                    "pruned": runs[0]["pruned"],
                    "left": runs[0]["left"],
                    "pass s (median)": round(statistics.median(run["seconds"] for run in runs), 3),
                    "pruned per s (median)": round(statistics.median(run["pruned"] / run["seconds"] for run in runs)),
                    "tombstones produced s (median)": round(statistics.median(run["flushed"] for run in runs), 3),
                    "worst loop wait ms (max)": round(max(run["worst_loop_wait_ms"] for run in runs), 1),
                }
            )
        return rows
    finally:
        await view.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="atelier-bench-status-") as folder:
        infra = LocalInfra(Path(folder))
        infra.start()
        try:
            settings = settings_from(StatusSettings, infra.environment())
            infra.provision(settings)
            rows = asyncio.run(measure(settings))  # type: ignore[arg-type]
        finally:
            infra.stop()
    info = machine()
    stem = result_stem("status", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    columns = list(rows[0])
    lines = [
        "# The status view's retention pass",
        "",
        f"{info['date']}, {info['cpu']}, {info['cores']} cores. `make bench-status`: one prune pass over a table",
        f"whose documents are half past retention, {ROUNDS} rounds per size; the worst lateness of a 1 ms",
        "ticker on the view's event loop during the pass and until its tombstones were produced (what a",
        "fold or a read waited at most).",
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows),
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
