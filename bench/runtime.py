"""make bench-runtime: the runtime's own cost per record, with a handler that does nothing.

Publishes N upload events to the embedded broker, then runs a declared service whose handler
turns each into a tagged event (no I/O) through the whole runtime: fetch, buffer, the layers
(tracing, logging, metrics, dead-letter, retry, publish: produce with acks=all) and commit. Times
from start to the last committed offset, repeated; prints the median records per second and
microseconds per record. Results: bench/results/runtime-<machine>.{md,json}.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from atelier_devtools.local.stack import LocalInfra
from atelier_shared import (
    AtelierSettings,
    BatchPolicy,
    EventProducer,
    Options,
    Outgoing,
    Service,
    configure_logging,
    events,
    topics,
)
from atelier_shared.settings import settings_from
from bench.common import machine, result_stem
from tests.kafka import group_lag


async def publish(settings: AtelierSettings, count: int) -> None:
    producer = EventProducer(settings.kafka_bootstrap, "bench", settings.topics)
    await producer.start()
    try:
        for start in range(0, count, 500):
            await producer.send(
                [
                    Outgoing(topics.UPLOADED, events.AssetUploaded(asset=events.AssetHeader(asset_id=f"a{i}")))
                    for i in range(start, min(start + 500, count))
                ]
            )
    finally:
        await producer.stop()


async def run_once(settings: AtelierSettings, count: int) -> float:
    """Seconds from the first record handled to the last one committed (joining the group left out)."""
    first: list[float] = []

    async def tag(event: events.AssetUploaded) -> events.AssetTagged:
        first.append(first[0] if first else time.perf_counter())
        return events.AssetTagged(asset=event.asset)

    service = Service("bench", settings, port=0)
    service.consume(topics.UPLOADED, tag, publishes=topics.TAGGED, options=Options(batch=BatchPolicy(max_items=32)))
    await service.start()
    try:
        uploaded = settings.topics.name(topics.UPLOADED)
        while await group_lag(settings.kafka_bootstrap, settings.topics.group("bench"), [uploaded]):
            await asyncio.sleep(0.02)
        return time.perf_counter() - first[0]
    finally:
        await service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = machine()
    configure_logging("bench", "info")  # As a service process does: debug lines are filtered out.
    infra = LocalInfra(Path(tempfile.mkdtemp(prefix="bench-runtime-")))
    infra.start()
    seconds = []
    try:
        for repeat in range(args.repeats):
            environment = {**infra.environment(f"r{repeat}.", f"r{repeat}-"), "OTEL_TRACES_EXPORTER": "none"}
            settings = settings_from(AtelierSettings, environment)
            infra.provision(settings)
            asyncio.run(publish(settings, args.records))
            seconds.append(asyncio.run(run_once(settings, args.records)))
            print(f"run {repeat + 1}: {args.records / seconds[-1]:.0f} records/s", flush=True)
    finally:
        infra.stop()
    write(info, args.records, seconds)


def write(info: dict[str, Any], records: int, seconds: list[float]) -> None:
    median = statistics.median(seconds)
    result = {
        "machine": info,
        "records": records,
        "seconds": [round(s, 3) for s in seconds],
        "median_records_per_s": round(records / median),
        "median_us_per_record": round(median / records * 1e6),
    }
    print(json.dumps(result, indent=2))
    stem = result_stem("runtime", info)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Runtime benchmark ({info['date']})",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores). Produced by `make bench-runtime`: {records} records",
        "through a declared service whose handler does no I/O (fetch, layers, produce with acks=all, commit),",
        f"from the first record handled to the last offset committed, {len(seconds)} runs on the embedded broker.",
        "",
        "| median records/s | median µs per record | runs (s) |",
        "| --- | --- | --- |",
        f"| {result['median_records_per_s']} | {result['median_us_per_record']} | {', '.join(map(str, result['seconds']))} |",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
