"""make bench-failover: the same production burst with lag-aware fail-over on and off, side by side.

The quality pool serves as `make run` deploys it (shipped model at its working side). First its
per-item service time is measured; then, for each mode, a fresh deployment on the same embedded
infrastructure takes a burst of distinct production images at ten times the rate the quality pool
drains. Reported per mode: p50/p95/p99 of upload to first rendition, the share served degraded,
the time until every degraded asset was re-rendered at full fidelity, and the router's switches.
A plot shows the quality pool's expected wait against the brand's target, with the periods the
brand was failed over shaded. Results: bench/results/failover-<machine>.{md,json,png}.
"""

import argparse
import asyncio
import contextlib
import json
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from atelier_client.client import AtelierClient, Submission
from atelier_devtools.local.samples import write_samples
from atelier_devtools.local.stack import LocalInfra, LocalServices
from atelier_shared import AtelierSettings, events, topics
from atelier_shared.events import timestamp_ms
from bench.common import REPO, SHARED_CONTENT, machine, result_stem, start_stack, variants

# Opens a client of the API with a key (the admin key: every brand).
Connect = Callable[[], AtelierClient]

BRAND = "surge"
TARGET_MS = 20_000
ROUTER = {
    "ATELIER_LAG_POLL_INTERVAL_S": "0.5",
    "ATELIER_LAG_WINDOW_S": "6",
    "ATELIER_LAG_MIN_SPAN_S": "1.5",
    "ATELIER_FAILOVER_MIN_DWELL_S": "8",
    "ATELIER_FAILOVER_EXIT_RATIO": "0.6",
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def metric(url: str, sample: str) -> float:
    """One sample (name with its labels, as /metrics prints it), or 0 when absent."""
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class Sampler(threading.Thread):
    """Scrapes the router's expected wait and fail-over state twice a second."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.series: list[dict[str, float]] = []
        self.started = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            with contextlib.suppress(OSError):
                self.series.append(
                    {
                        "t": time.monotonic() - self.started,
                        "expected_wait_s": metric(self.url, 'atelier_expected_wait_seconds{pool="quality"}'),
                        "lag": metric(self.url, 'atelier_pool_lag{pool="quality"}'),
                        "degraded": metric(self.url, f'atelier_failover_degraded{{brand="{BRAND}"}}'),
                    }
                )
            self._halt.wait(0.5)

    def stop(self) -> None:
        self._halt.set()
        self.join()


async def exported_events(bootstrap: str, topic: str) -> list[events.AssetExported]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[events.AssetExported] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                found.extend(events.AssetExported.FromString(record.value) for record in records)
    finally:
        await consumer.stop()
    return found


def brands_dir(root: Path) -> Path:
    folder = root / "brands"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{BRAND}.yaml").write_text(
        f"brand: {BRAND}\ndefault_style: tiles\nlatency_targets_ms: {{preview: 3000, production: {TARGET_MS}}}\nrerender: true\n"
    )
    return folder


def deploy(
    infra: LocalInfra, workdir: Path, prefix: str, failover: bool
) -> tuple[LocalServices, AtelierSettings, Connect]:
    overrides = {"router": {**ROUTER, "ATELIER_FAILOVER_ENABLED": str(failover).lower()}}
    services, settings, key = start_stack(infra, workdir, prefix, brands_dir(workdir), overrides=overrides)
    return services, settings, partial(AtelierClient, services.api_url(), key)


async def submit_burst(connect: Connect, images: list[Path], rate_per_s: float) -> list[Submission]:
    async with connect() as client:
        submissions = []
        started = time.monotonic()
        for index, path in enumerate(images):
            await asyncio.sleep(max(0.0, started + index / rate_per_s - time.monotonic()))
            submission = Submission(path)
            submission.asset_id = await client.submit(path, BRAND, "production")
            submissions.append(submission)
        return submissions


async def wait_first_renditions(connect: Connect, submissions: list[Submission]) -> None:
    async with connect() as client:
        await client.wait(submissions, 1200)


def run_mode(infra: LocalInfra, workdir: Path, failover: bool, images: list[Path], rate: float) -> dict[str, Any]:
    prefix = "on." if failover else "off."
    services, settings, connect = deploy(infra, workdir, prefix, failover)
    try:
        asyncio.run(wait_first_renditions(connect, asyncio.run(submit_burst(connect, images[:1], 1.0))))  # Warm-up.
        sampler = Sampler(services.url("router", "/metrics"))
        sampler.start()
        burst_started = time.time()
        submissions = asyncio.run(submit_burst(connect, images[1:], rate))
        asyncio.run(wait_first_renditions(connect, submissions))
        ids = {s.asset_id for s in submissions}
        exported_topic = settings.topics.name(topics.EXPORTED)
        deadline = time.monotonic() + 1800
        while True:  # Until every degraded asset is re-rendered (fail-over on) or at once (off).
            seen = [
                e
                for e in asyncio.run(exported_events(settings.kafka_bootstrap, exported_topic))
                if e.asset.asset_id in ids
            ]
            degraded = {e.asset.asset_id for e in seen if e.route.degraded}
            rerendered = {e.asset.asset_id: e for e in seen if e.route.rerender}
            if degraded <= set(rerendered) or time.monotonic() > deadline:
                break
            time.sleep(2)
        switches = metric(
            services.url("router", "/metrics"), f'atelier_failover_switches_total{{brand="{BRAND}",to="fast"}}'
        )
        switches_back = metric(
            services.url("router", "/metrics"), f'atelier_failover_switches_total{{brand="{BRAND}",to="quality"}}'
        )
        sampler.stop()
    finally:
        services.stop_all()
    first: dict[str, events.AssetExported] = {}
    for event in seen:
        if not event.route.rerender and event.asset.asset_id not in first:
            first[event.asset.asset_id] = event
    waits = [
        timestamp_ms(e.asset.timeline.exported_at) - timestamp_ms(e.asset.timeline.uploaded_at) for e in first.values()
    ]
    last_rerender = max((timestamp_ms(e.asset.timeline.exported_at) for e in rerendered.values()), default=0.0)
    return {
        "failover": failover,
        "assets": len(first),
        "p50_ms": round(percentile(waits, 0.5)),
        "p95_ms": round(percentile(waits, 0.95)),
        "p99_ms": round(percentile(waits, 0.99)),
        "within_target": sum(1 for w in waits if w <= TARGET_MS),
        "share_degraded": round(len(degraded) / max(len(first), 1), 3),
        "rerendered": len(rerendered),
        "seconds_until_all_rerendered": round(last_rerender / 1000 - burst_started, 1) if degraded else None,
        "switches_to_fast": int(switches),
        "switches_to_quality": int(switches_back),
        "series": sampler.series,
    }


def measure_service_s(infra: LocalInfra, workdir: Path, images: list[Path]) -> float:
    """Seconds per quality item, from a few sequential production renders."""
    services, _settings, connect = deploy(infra, workdir, "probe.", failover=False)
    try:
        times = []
        for path in images[:4]:

            async def one(path: Path = path) -> dict[str, Any]:
                async with connect() as client:
                    submission = Submission(path)
                    submission.asset_id = await client.submit(path, BRAND, "production")
                    await client.wait([submission], 600)
                    return submission.status

            times.append(asyncio.run(one())["stylized"]["timings"]["inference_ms"] / 1000)
        return sorted(times)[len(times) // 2]
    finally:
        services.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--assets", type=int, default=0, help="burst size (default: 10 s at 10x the drain rate, 20 to 60)"
    )
    args = parser.parse_args()
    info = machine()
    workdir = REPO / ".atelier" / "bench-failover"
    shutil.rmtree(workdir, ignore_errors=True)
    base = write_samples(workdir / "images") + (sorted(SHARED_CONTENT.iterdir()) if SHARED_CONTENT.is_dir() else [])
    infra = LocalInfra(workdir)
    infra.start()
    try:
        service_s = measure_service_s(infra, workdir, variants(base, 1, workdir / "probe"))
        drain = 1 / service_s
        rate = 10 * drain
        count = args.assets or max(20, min(60, round(10 * rate)))
        images = variants(base, -(-(count + 1) // len(base)), workdir / "burst")[: count + 1]
        print(
            f"quality service {service_s:.2f} s/item: drain {drain:.2f}/s; burst of {count} at {rate:.2f}/s", flush=True
        )
        results = [run_mode(infra, workdir, failover, images, rate) for failover in (True, False)]
    finally:
        infra.stop()
    for result in results:
        print(json.dumps({k: v for k, v in result.items() if k != "series"}), flush=True)
    write(info, service_s, count, rate, results)


def plot(path: Path, results: list[dict[str, Any]]) -> None:
    """Expected wait against the target over time, fail-over periods shaded, one panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for axis, result in zip(axes, results, strict=True):
        series = result["series"]
        times = [point["t"] for point in series]
        axis.plot(
            times, [min(point["expected_wait_s"], 300) for point in series], label="quality pool expected wait (s)"
        )
        axis.axhline(
            TARGET_MS / 1000, color="red", linestyle="--", label=f"{BRAND} production target ({TARGET_MS / 1000:.0f} s)"
        )
        for point, following in zip(series, series[1:], strict=False):
            if point["degraded"] == 1:
                axis.axvspan(point["t"], following["t"], color="orange", alpha=0.25, linewidth=0)
        axis.set_title(
            f"fail-over {'on' if result['failover'] else 'off'}: p95 {result['p95_ms'] / 1000:.1f} s, "
            f"{result['share_degraded']:.0%} degraded (shaded: routed to the fast pool)"
        )
        axis.set_ylabel("seconds")
        axis.set_ylim(0, max(TARGET_MS / 1000 * 3, 1))
        axis.legend(loc="upper right")
    axes[-1].set_xlabel("seconds since the burst began")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write(info: dict[str, Any], service_s: float, count: int, rate: float, results: list[dict[str, Any]]) -> None:
    stem = result_stem("failover", info)
    record = {"machine": info, "service_s": service_s, "burst": count, "rate_per_s": rate, "target_ms": TARGET_MS}
    stem.with_suffix(".json").write_text(json.dumps({**record, "runs": results}, indent=2))
    plot(stem.with_suffix(".png"), results)
    on, off = results
    lines = [
        f"# Fail-over benchmark ({info['date']})",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}. Produced by `make bench-failover`.",
        f"The quality pool's measured service time was {service_s:.2f} s per item (it drains {1 / service_s:.2f}/s); the",
        f"same burst of {count} distinct production images at {rate:.2f}/s (10x the drain) went to a fresh deployment",
        f"with fail-over on, then off. Brand `{BRAND}`, production target {TARGET_MS / 1000:.0f} s.",
        "",
        "| fail-over | p50 to first rendition | p95 | p99 | within target | served degraded | re-rendered | all re-rendered after | switches (to fast / back) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in (on, off):
        lines.append(
            f"| {'on' if r['failover'] else 'off'} | {r['p50_ms'] / 1000:.1f} s | {r['p95_ms'] / 1000:.1f} s | {r['p99_ms'] / 1000:.1f} s | "
            f"{r['within_target']}/{r['assets']} | {r['share_degraded']:.0%} | {r['rerendered']} | "
            f"{'-' if r['seconds_until_all_rerendered'] is None else str(r['seconds_until_all_rerendered']) + ' s'} | "
            f"{r['switches_to_fast']} / {r['switches_to_quality']} |"
        )
    lines += ["", f"![expected wait, target and tier over time]({stem.name}.png)"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
