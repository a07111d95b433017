"""make bench-reliability: faults injected into the embedded stack under a steady stream of uploads.

The stack runs as `make run` runs it (every service a process, restarted by the supervisor), at small
working sizes so the stream keeps flowing on two cores. Rows, one after another on the same stack,
each with its own assets (the backlog of one row is drained before the next):
- kill -9 of each of uploader, tagger, router, stylizer (quality pool) and exporter, mid-stream;
- Kafka down: every broker of the cluster down for --outage seconds, then up; a leader move of
  every partition to another broker;
- S3 down: the S3 endpoint frozen (SIGSTOP: connections hang until clients time out), then resumed;
- poison: garbage, wrong-type and empty records on every topic, mid-stream;
- hostile corpus: bench/hostile.py's files through HTTP upload, bucket drop and intake events.
A burst of uploads a second before each fault puts work in flight at every stage when it lands.
Per row: uploads accepted and refused, assets exported, dead-lettered (failed), lost (neither once
the drain ends), duplicate rendition objects and repeated exported events, supervisor restarts,
when flow resumed after the fault ended and when the work in flight during it was done.
Results: bench/results/reliability-<machine>.{md,json}.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from google.protobuf.message import DecodeError

from atelier_devtools.local.notifications import minio_notification
from atelier_devtools.local.stack import LIGHT_STYLIZERS, LocalInfra, LocalServices
from atelier_devtools.local.supervisor import Exit, Supervisor
from atelier_shared import AtelierSettings, ObjectStore, events, topics
from atelier_shared.assets import asset_id_for_object
from atelier_shared.settings import settings_from
from atelier_uploader.keys import ADMIN
from bench import hostile
from bench.common import REPO, machine, result_stem

BRANDS = ("acme", "lumen")
POISON_KEY = b"poison"
KILLED = ("uploader", "tagger", "router", "stylizer-quality", "exporter")


@dataclass
class Stack:
    """The embedded stack under test, its supervisor and what it has seen exit."""

    infra: LocalInfra
    services: LocalServices
    settings: AtelierSettings
    admin_key: str
    exits: list[Exit] = field(default_factory=list)

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.settings)

    def topic(self, spec: topics.TopicSpec[Any]) -> str:
        return self.settings.topics.name(spec)


def deploy(workdir: Path) -> tuple[Stack, Supervisor]:
    infra = LocalInfra(workdir)
    infra.start()
    environment = {
        **infra.environment(),
        "ATELIER_BRANDS_DIR": str(REPO / "deploy" / "brands"),
        "ATELIER_MODEL_CACHE_DIR": str(workdir / "model-cache"),
        "ATELIER_CLASSIFIER_DIR": str(infra.classifier),
        "OTEL_TRACES_EXPORTER": "none",
    }
    settings = settings_from(AtelierSettings, environment)
    infra.provision(settings)
    from atelier_stylizer.registry import ModelRegistry
    from atelier_workshop.defaults import publish_defaults

    registry = ModelRegistry.open(f"s3://{settings.bucket_models}", ObjectStore(settings), workdir / "cache")
    asyncio.run(publish_defaults(registry))
    keys = infra.create_keys(settings)
    services = LocalServices(environment, workdir / "logs", overrides=LIGHT_STYLIZERS, cwd=workdir)
    services.start_ready()
    stack = Stack(infra, services, settings, keys[ADMIN])
    supervisor = Supervisor(services, on_event=stack.exits.append)
    supervisor.start()
    return stack, supervisor


@dataclass
class Stream:
    """What a steady stream of uploads got: accepted asset ids (with when) and refusals."""

    accepted: dict[str, float] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)


async def upload(session: aiohttp.ClientSession, stack: Stack, data: bytes, name: str, brand: str) -> tuple[int, str]:
    """POST one file as a client would, waiting out 429s as Retry-After says; the status code and the
    asset id or error message (0 and the error when no answer)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    for _ in range(60):
        form = aiohttp.FormData()
        form.add_field("brand", brand)
        form.add_field("tier", "production")
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        try:
            timeout = aiohttp.ClientTimeout(total=30)
            url = stack.services.api_url("/v1/assets")
            async with session.post(url, data=form, headers=headers, timeout=timeout) as response:
                body = await response.json(content_type=None)
                wait_s = float(response.headers.get("Retry-After", "1"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return 0, type(exc).__name__
        if response.status != 429:
            return response.status, str(body.get("asset_id") or body.get("error") or body)
        await asyncio.sleep(wait_s)
    return 429, "still over the brand's limits after 60 tries"


async def stream(stack: Stack, stop: asyncio.Event, interval_s: float, seed: int, result: Stream) -> None:
    """Upload a distinct image every `interval_s` across the brands until `stop` is set (into `result`)."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            began = time.monotonic()
            data = hostile.photo_jpeg(seed)
            code, answer = await upload(session, stack, data, f"stream-{seed}.jpg", BRANDS[seed % len(BRANDS)])
            if code == 202:
                result.accepted[answer] = time.time()
            else:
                result.refused[f"{code} {answer[:60]}"] += 1
            seed += 1
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - began)))


async def burst(stack: Stack, count: int, seed: int, sent: Stream) -> None:
    """`count` uploads at once (so work is in flight at every stage when a fault lands)."""
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(
                upload(session, stack, hostile.photo_jpeg(seed + n), f"burst-{seed + n}.jpg", BRANDS[n % len(BRANDS)])
                for n in range(count)
            )
        )
    for code, answer in answers:
        if code == 202:
            sent.accepted[answer] = time.time()
        else:
            sent.refused[f"{code} {answer[:60]}"] += 1


async def watch(
    stack: Stack, sent: Stream, stop: asyncio.Event, seen: dict[str, float], finals: dict[str, Any]
) -> None:
    """Poll the accepted assets' statuses every second; record when each was first seen final."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while not (stop.is_set() and set(seen) >= set(sent.accepted)):
            for asset_id in [a for a in list(sent.accepted) if a not in seen]:
                try:
                    async with session.get(stack.services.api_url(f"/v1/assets/{asset_id}"), headers=headers) as r:
                        status = await r.json() if r.status == 200 else {}
                except (aiohttp.ClientError, TimeoutError):
                    continue
                if status.get("stage") in ("exported", "failed"):
                    seen[asset_id], finals[asset_id] = time.time(), status
            await asyncio.sleep(1.0)


async def statuses(stack: Stack, asset_ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """The statuses of the assets that became final (exported or failed) within the timeout."""
    done = asyncio.Event()
    done.set()
    seen: dict[str, float] = {}
    finals: dict[str, Any] = {}
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            watch(stack, Stream(dict.fromkeys(asset_ids, time.time())), done, seen, finals), timeout_s
        )
    return finals


def final_at(status: dict[str, Any]) -> float | None:
    """When an asset became final, seconds since the epoch."""
    from datetime import datetime

    stamp = status.get("timeline", {}).get("exported_at") or status.get("failure", {}).get("failed_at")
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


async def topic_records(stack: Stack, spec: topics.TopicSpec[Any]) -> list[Any]:
    """Every record of a topic so far (key, value)."""
    consumer = AIOKafkaConsumer(
        stack.topic(spec), bootstrap_servers=stack.settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            for records in batch.values():
                found.extend(records)
    finally:
        await consumer.stop()
    return found


async def poison_dead_letters(stack: Stack) -> dict[str, int]:
    """Dead letters of poison records, by the service that dead-lettered them."""
    found: Counter[str] = Counter()
    for record in await topic_records(stack, topics.DEAD_LETTER):
        try:
            dead = events.DeadLettered.FromString(record.value)
        except DecodeError:
            continue  # A poison record written onto the dead-letter topic itself.
        if dead.original_key == POISON_KEY:
            found[dead.service] += 1
    return dict(found)


async def duplicates(stack: Stack, finals: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Rendition objects beyond each asset's renditions, and exported events beyond one per render."""
    keys = await stack.store.list_keys(stack.settings.bucket_renditions)
    per_asset = Counter(key.split("/")[1] for key in keys if key.count("/") >= 2)
    extra_objects = sum(
        max(0, per_asset[asset_id] - len(status.get("renditions", []))) for asset_id, status in finals.items()
    )
    renders = Counter()
    for record in await topic_records(stack, topics.EXPORTED):
        if record.key == POISON_KEY:
            continue
        exported = events.AssetExported.FromString(record.value)
        if exported.asset.asset_id in finals:
            renders[(exported.asset.asset_id, exported.route.rerender)] += 1
    return extra_objects, sum(count - 1 for count in renders.values())


def peak_memory_mb(stack: Stack) -> dict[str, float]:
    """Each service process's peak resident memory (VmHWM; a restarted process starts again)."""
    peaks = {}
    for name in stack.services.specs:
        try:
            status = Path(f"/proc/{stack.services.pid(name)}/status").read_text()
        except (OSError, KeyError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[name] = round(int(line.split()[1]) / 1024, 1)
    return peaks


Fault = Callable[[Stack], Awaitable[None]]


def kill(name: str) -> Fault:
    async def fault(stack: Stack) -> None:
        os.kill(stack.services.pid(name), signal.SIGKILL)

    return fault


def outage(start: Callable[[Stack], None], end: Callable[[Stack], None], seconds: float) -> Fault:
    async def fault(stack: Stack) -> None:
        start(stack)
        try:
            await asyncio.sleep(seconds)
        finally:
            end(stack)

    return fault


def brokers(stack: Stack, up: bool) -> None:
    for broker in range(1, stack.infra.cluster.brokers + 1):
        (stack.infra.cluster.broker_up if up else stack.infra.cluster.broker_down)(broker)


def s3_signal(stack: Stack, sig: signal.Signals) -> None:
    os.kill(stack.infra.s3.pid, sig)


async def move_leaders(stack: Stack) -> None:
    """Every partition of every topic led by the next broker (as after a broker restart in a cluster)."""
    cluster = stack.infra.cluster
    for name in stack.settings.topics.provisioned_names():
        for partition in range(stack.settings.topic_partitions):
            cluster.move_leader(name, partition, 1 + (partition + 1) % cluster.brokers)


async def poison(stack: Stack) -> None:
    """Garbage, another message type, and an empty record, onto every topic."""
    from aiokafka import AIOKafkaProducer

    wrong = events.PoolReported(pool="poison", item_service_ms=1.0).SerializeToString()
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap)
    await producer.start()
    try:
        for spec in topics.ALL:
            for value in (os.urandom(64), wrong, b""):
                await producer.send_and_wait(stack.topic(spec), value=value, key=POISON_KEY)
    finally:
        await producer.stop()


async def run_row(stack: Stack, name: str, fault: Fault, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """A stream with a fault injected `--fault-at` seconds in; the row's figures once drained."""
    print(f"row {name}", flush=True)
    exits_before = len(stack.exits)
    stop, done = asyncio.Event(), asyncio.Event()
    seen: dict[str, float] = {}  # asset id -> when first seen final through the API
    finals: dict[str, Any] = {}
    sent = Stream()
    streaming = asyncio.create_task(stream(stack, stop, args.interval, seed, sent))
    watching = asyncio.create_task(watch(stack, sent, done, seen, finals))
    await asyncio.sleep(args.fault_at)
    await burst(stack, args.burst, seed + 500, sent)
    await asyncio.sleep(1.0)  # The burst spreads over the stages.
    fault_start = time.time()
    await fault(stack)
    fault_end = time.time()
    await asyncio.sleep(args.after)
    stop.set()
    await streaming
    done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watching, args.drain)
    extra_objects, repeated = await duplicates(stack, finals)
    # Recovery, as a client sees it: the first asset accepted after the fault began that came out the
    # other end (it went through what was killed or down), and when the assets accepted before the
    # fault's end and not yet final when it began were all final (None: none was in flight).
    since_fault = [seen[a] for a, at in sent.accepted.items() if at >= fault_start and a in seen]
    held = [seen[a] for a, at in sent.accepted.items() if at <= fault_end and a in seen and seen[a] >= fault_start]
    stages = Counter(status.get("stage") for status in finals.values())
    poisoned = await poison_dead_letters(stack) if fault is poison else {}
    return {
        "poison_dead_letters": poisoned,
        "row": name,
        "accepted": len(sent.accepted),
        "refused": sum(sent.refused.values()),
        "refusals": dict(sent.refused),
        "exported": stages["exported"],
        "dead_lettered": stages["failed"],
        "lost": len(sent.accepted) - stages["exported"] - stages["failed"],
        "duplicate_objects": extra_objects,
        "repeated_exported_events": repeated,
        "restarts": [f"{e.name} ({e.returncode})" for e in stack.exits[exits_before:]],
        "fault_s": round(fault_end - fault_start, 1),
        "flow_resumed_s": round(min(since_fault) - fault_end, 1) if since_fault else None,
        "drained_s": round(max(held) - fault_end, 1) if held else None,
    }


async def hostile_row(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Every corpus file through each entry path: exported, or refused with a clear error (how fast)."""
    print("row hostile corpus", flush=True)
    exits_before = len(stack.exits)
    corpus = hostile.corpus()
    outcomes: dict[str, dict[str, Any]] = {}
    watched: dict[str, tuple[str, float]] = {}  # asset id -> outcome key, when submitted
    async with aiohttp.ClientSession() as session:
        for name, data in corpus.items():
            began = time.monotonic()
            code, answer = await upload(session, stack, data, name, "acme")
            outcomes[f"http {name}"] = {"answer": code, "answer_s": round(time.monotonic() - began, 3)}
            if code == 202:
                watched[answer] = (f"http {name}", time.time())
            else:
                outcomes[f"http {name}"]["error"] = answer
    for index, (name, data) in enumerate(corpus.items()):
        watched[await drop(stack, f"acme/production/hostile/{name}", data)] = (f"drop {name}", time.time())
        watched[await intake(stack, f"hostile-{index}", f"intake/{name}", data)] = (f"intake {name}", time.time())
    finals = await statuses(stack, list(watched), args.drain)
    for asset_id, (key, submitted) in watched.items():
        status = finals.get(asset_id, {})
        entry = outcomes.setdefault(key, {})
        entry["stage"] = status.get("stage", "lost")
        if status.get("stage") == "failed":
            entry["error"] = f"{status['failure']['error_type']}: {status['failure']['message'][:100]}"
            entry["refused_s"] = round((final_at(status) or submitted) - submitted, 2)
    return summarise_hostile(outcomes, stack, exits_before)


async def drop(stack: Stack, key: str, data: bytes) -> str:
    """Put an object into the inbox and publish MinIO's notification (as MinIO would); its asset id."""
    from aiokafka import AIOKafkaProducer

    bucket = stack.settings.bucket_inbox
    await stack.store.put(bucket, key, data, "application/octet-stream")
    stored = await stack.store.stat(bucket, key)
    assert stored is not None
    record_key, value = minio_notification(bucket, key, stored.size, stored.etag, "application/octet-stream", None)
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(stack.topic(topics.INBOX), value=value, key=record_key)
    finally:
        await producer.stop()
    return asset_id_for_object(bucket, key, stored.etag)


async def intake(stack: Stack, asset_id: str, key: str, data: bytes) -> str:
    """Store an object and publish the upload event another system would; the asset id."""
    from aiokafka import AIOKafkaProducer

    bucket = "partner-uploads"  # Another system's bucket: intake events never name Atelier's.
    await stack.store.ensure_buckets([bucket])
    await stack.store.put(bucket, key, data, "application/octet-stream")
    event = events.AssetSubmitted(asset_id=asset_id, brand="lumen", tier=events.TIER_PRODUCTION, bucket=bucket, key=key)
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(stack.topic(topics.INTAKE), value=event.SerializeToString(), key=asset_id.encode())
    finally:
        await producer.stop()
    return asset_id


def summarise_hostile(outcomes: dict[str, dict[str, Any]], stack: Stack, exits_before: int) -> dict[str, Any]:
    rows: dict[str, Counter[str]] = {}
    slowest: dict[str, float] = {}
    for key, outcome in outcomes.items():
        path = key.split(" ", 1)[0]
        refused = outcome.get("answer", 202) != 202 or outcome.get("stage") == "failed"
        kind = "exported" if outcome.get("stage") == "exported" else "refused" if refused else "lost"
        rows.setdefault(path, Counter())[kind] += 1
        took = outcome.get("answer_s", 0.0) if outcome.get("answer", 202) != 202 else outcome.get("refused_s", 0.0)
        if refused:
            slowest[path] = max(slowest.get(path, 0.0), took)
        if refused and not outcome.get("error"):
            rows[path]["refused without a message"] += 1
    return {
        "row": "hostile corpus",
        "files": len({key.split(" ", 1)[1] for key in outcomes}),
        "paths": {path: dict(counts) for path, counts in rows.items()},
        "slowest_refusal_s": slowest,
        "restarts": [f"{e.name} ({e.returncode})" for e in stack.exits[exits_before:]],
        "peak_memory_mb": peak_memory_mb(stack),
        "outcomes": outcomes,
    }


async def run_all(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    faults: list[tuple[str, Fault]] = [(f"kill -9 {name}", kill(name)) for name in KILLED]
    faults += [
        (
            f"kafka down {args.outage:.0f} s",
            outage(lambda s: brokers(s, False), lambda s: brokers(s, True), args.outage),
        ),
        (
            f"s3 frozen {args.outage:.0f} s",
            outage(lambda s: s3_signal(s, signal.SIGSTOP), lambda s: s3_signal(s, signal.SIGCONT), args.outage),
        ),
        ("leader move of every partition", move_leaders),
        ("poison records on every topic", poison),
    ]
    for index, (name, fault) in enumerate(faults):
        if args.only and not any(word in name for word in args.only):
            continue
        rows.append(await run_row(stack, name, fault, args, seed=1000 * (index + 1)))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "refusals"}), flush=True)
        write(args.info, vars(args), rows)  # After every row: a run cut short keeps what it measured.
    if not args.only or "hostile" in args.only:
        rows.append(await hostile_row(stack, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "outcomes"}), flush=True)
        write(args.info, vars(args), rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between stream uploads")
    parser.add_argument("--fault-at", type=float, default=10.0, help="seconds into a row's stream")
    parser.add_argument("--burst", type=int, default=8, help="uploads at once a second before the fault")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of stream after the fault ends")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds Kafka or S3 is down")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for a row's assets")
    parser.add_argument("--only", nargs="*", default=[], help="rows whose name contains one of these words")
    args = parser.parse_args()
    args.info = machine()
    workdir = REPO / ".atelier" / "bench-reliability"
    shutil.rmtree(workdir, ignore_errors=True)
    stack, supervisor = deploy(workdir)
    try:
        asyncio.run(run_all(stack, args))
    finally:
        supervisor.stop()
        stack.services.stop_all()
        stack.infra.stop()


def write(info: dict[str, Any], arguments: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    settings = {key: value for key, value in arguments.items() if key != "info"}
    stem = result_stem("reliability", info)
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "settings": settings, "rows": rows}, indent=2))
    lines = [
        "# Reliability: faults under a steady stream of uploads (make bench-reliability)",
        "",
        f"{info['date']}, {info['cpu']}, {info['cores']} cores. Settings: {json.dumps(settings)}.",
        "Targets: 0 lost and 0 duplicates in every row, recovery under 30 s.",
        "",
        "| row | accepted | refused | exported | dead-lettered | lost | duplicate objects | repeated exported events "
        "| restarts | first asset uploaded since the fault out after its end (s) | work in flight during it done after (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "accepted" in row:
            cells = [row[k] for k in ("row", "accepted", "refused", "exported", "dead_lettered", "lost")]
            cells += [row["duplicate_objects"], row["repeated_exported_events"], ", ".join(row["restarts"]) or "none"]
            cells += [row["flow_resumed_s"], row["drained_s"]]
            lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    for row in rows:
        if "accepted" in row and row["refusals"]:
            lines.append(f"\n{row['row']}: refusals {json.dumps(row['refusals'])}")
        if row.get("poison_dead_letters"):
            poisoned = json.dumps(row["poison_dead_letters"])
            lines.append(f"\n{row['row']}: poison records dead-lettered, by service: {poisoned}")
    lines += hostile_lines([row for row in rows if "files" in row])
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md")


def hostile_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        lines += ["", f"## Hostile corpus: {row['files']} files through each entry path", ""]
        lines += ["| path | outcomes | slowest refusal (s) |", "|---|---|---|"]
        for path, counts in row["paths"].items():
            lines.append(f"| {path} | {json.dumps(counts)} | {row['slowest_refusal_s'].get(path, '')} |")
        lines += [
            "",
            f"Restarts: {', '.join(row['restarts']) or 'none'}. Peak memory (MB): {json.dumps(row['peak_memory_mb'])}.",
        ]
        lines += ["", "| file and path | outcome | error |", "|---|---|---|"]
        for key, outcome in sorted(row["outcomes"].items()):
            state = outcome.get("stage") or f"HTTP {outcome.get('answer')}"
            lines.append(f"| {key} | {state} | {outcome.get('error', '')} |")
    return lines


if __name__ == "__main__":
    main()
