"""Lag-aware fail-over, re-render, preview priority and brand fairness, with all services running; and
the dashboards' and alerts' expressions against a real Prometheus scraping the fail-over as it happens."""

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from atelier_devtools.local.stack import SERVICES
from atelier_shared import events, topics
from tests.conftest import Deployment, jpeg_bytes
from tests.e2e.conftest import Pipeline, start_pipeline
from tests.kafka import read_topic
from tests.observability import dashboard_targets, rule_groups
from tests.prometheus import Prometheus, scraping

pytestmark = pytest.mark.e2e

BRANDS = {
    "rush": "production: 4000\n  preview: 3000",
    "bulk": "production: 600000\n  preview: 3000",
    "boutique": "production: 5500\n  preview: 3000",
}

# Fast decisions for a short test: sample lag every 0.3 s, trust a drain rate after 1 s, dwell 3 s.
ROUTER = {
    "ATELIER_LAG_POLL_INTERVAL_S": "0.3",
    "ATELIER_LAG_WINDOW_S": "4",
    "ATELIER_LAG_MIN_SPAN_S": "1",
    "ATELIER_FAILOVER_MIN_DWELL_S": "3",
    "ATELIER_FAILOVER_EXIT_RATIO": "0.5",
    "ATELIER_PIPELINE_OVERHEAD_MS": "300",
    "ATELIER_DEFAULT_SERVICE_MS": "400",
}
# A slow quality pool: bigger working size, one image per batch, one thread.
SLOW_QUALITY = {
    "ATELIER_STYLIZER_WORKING_SIDE": "640",
    "ATELIER_STYLIZER_MAX_BATCH": "1",
    "ATELIER_POOL_REPORT_INTERVAL_S": "0.5",
}


def brands_dir(root: Path) -> Path:
    folder = root / "brands"
    folder.mkdir()
    for brand, targets in BRANDS.items():
        (folder / f"{brand}.yaml").write_text(
            f"brand: {brand}\ndefault_style: tiles\nstyles: [tiles, brush]\n"
            f"latency_targets_ms:\n  {targets}\nrerender: true\n"
            # The tests' bursts go far beyond the default rate limit: they exercise the pools, not it.
            "limits: {rate: 1000/second}\n"
        )
    return folder


def start(
    deployment: Deployment,
    names: list[str],
    fast: dict[str, str] | None = None,
    router: dict[str, str] | None = None,
) -> Pipeline:
    brands = str(brands_dir(deployment.workdir))
    overrides = {name: {"ATELIER_BRANDS_DIR": brands} for name in (spec.name for spec in SERVICES)}
    overrides["router"].update({**ROUTER, **(router or {})})
    overrides["stylizer-quality"].update(SLOW_QUALITY)
    overrides["stylizer-fast"].update({"ATELIER_POOL_REPORT_INTERVAL_S": "0.5", **(fast or {})})
    return start_pipeline(deployment, overrides=overrides, names=names)


def everything_but(*excluded: str) -> list[str]:
    return [spec.name for spec in SERVICES if spec.name not in excluded]


def submit(pipeline: Pipeline, brand: str, tier: str = "production", seed: int = 0) -> str:
    code, body = pipeline.submit(jpeg_bytes(320, 240, seed=seed), brand=brand, tier=tier)
    assert code == 202, body
    return str(body["asset_id"])


def routed(pipeline: Pipeline, asset_id: str, timeout_s: float = 30) -> dict:  # type: ignore[type-arg]
    status = pipeline.wait_final([asset_id], stages={"routed", "stylized", "exported"}, timeout_s=timeout_s)[asset_id]
    assert "route" in status, {k: v for k, v in status.items() if k not in ("original", "tags")}
    return status["route"]  # type: ignore[no-any-return]


def test_failover_when_the_quality_pool_stalls_back_after_it_drains_and_degraded_assets_are_rerendered(
    deployment: Deployment,
) -> None:
    pipeline = start(deployment, everything_but("stylizer-quality"))  # The quality pool is paused.
    try:
        with scraping(pipeline.services, deployment.workdir / "prometheus") as prometheus:
            failover_and_back(pipeline, deployment)
            every_expression_returns_data(prometheus)
    finally:
        pipeline.services.stop_all()


def every_expression_returns_data(prometheus: Prometheus) -> None:
    """Each dashboard query and recorded series has data, the fail-over shows in them, and the artist's
    wait carries exemplars with the trace id (every alert's firing is tested on made-up series by
    promtool: tests/unit/test_observability.py)."""
    queries = [target["expr"] for _, target in dashboard_targets()]
    queries += [rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule]
    empty = queries
    deadline = time.monotonic() + 60  # Scraped and recorded every 2 s; a slow scrape misses one round.
    while empty and time.monotonic() < deadline:
        time.sleep(1)
        empty = [query for query in empty if not prometheus.query(query)]
    assert not empty, f"no data: {empty}"
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                prometheus.query(rule["expr"])  # Evaluates here too, firing or not.

    def value(query: str) -> float:
        result = prometheus.query(query)
        return float(result[0]["value"][1]) if result else float("nan")

    assert value('max_over_time(atelier_failover_degraded{brand="rush"}[15m])') == 1
    assert value('atelier:degraded_share:rate5m{brand="rush"}') > 0
    assert value('sum(increase(atelier_rerenders_total{brand="rush"}[15m]))') >= 1
    exemplars = prometheus.exemplars("atelier_artist_wait_seconds_bucket")
    trace_ids = {item["labels"]["trace_id"] for series in exemplars for item in series["exemplars"]}
    assert trace_ids and all(len(trace_id) == 32 for trace_id in trace_ids), exemplars


def failover_and_back(pipeline: Pipeline, deployment: Deployment) -> None:
    """The scenario: fail over while the quality pool stalls, back once it drains, and every degraded
    asset re-rendered exactly once."""
    first = [submit(pipeline, "rush", seed=index) for index in range(4)]
    assert all(routed(pipeline, asset_id)["model_tier"] == "quality" for asset_id in first[:2])

    # Requests pile up on the stalled quality pool; once the predicted latency crosses the
    # target, new production requests go to the fast pool within a bounded time.
    deadline = time.monotonic() + 20
    degraded: list[str] = []
    while time.monotonic() < deadline and not degraded:
        asset_id = submit(pipeline, "rush", seed=len(first))
        first.append(asset_id)
        route = routed(pipeline, asset_id)
        if route["degraded"]:
            degraded.append(asset_id)
            assert route["model_tier"] == "fast" and "fail-over" in route["reason"] and route["target_ms"] == 4000
    assert degraded, "the router never failed over"
    degraded += [submit(pipeline, "rush", seed=100 + index) for index in range(3)]
    assert all(routed(pipeline, asset_id)["degraded"] for asset_id in degraded)
    served = pipeline.wait_final(degraded, timeout_s=60)
    assert all(status["stage"] == "exported" and status["route"]["model_tier"] == "fast" for status in served.values())
    first_keys = {a: sorted(r["object"]["key"] for r in served[a]["renditions"]) for a in degraded}

    # The quality pool comes back and drains; after the dwell, production returns to it.
    pipeline.services.start("stylizer-quality")
    pipeline.services.wait_ready(["stylizer-quality"])
    later: list[str] = []
    deadline = time.monotonic() + 90
    back = False
    while time.monotonic() < deadline and not back:
        later.append(submit(pipeline, "rush", seed=1000 + len(later)))
        back = not routed(pipeline, later[-1])["degraded"]
        time.sleep(0.5)
    assert back, "the router never moved production back to the quality pool"
    assert pipeline.metric("router", 'atelier_failover_switches_total{brand="rush",to="fast"}') == 1
    assert pipeline.metric("router", 'atelier_failover_switches_total{brand="rush",to="quality"}') == 1

    # Every asset served degraded (before or while the pool drained) is re-rendered at full
    # fidelity, at the same keys, exactly once.
    everything = first + degraded + later
    settings = deployment.settings()
    exported_topic = settings.topics.name(topics.EXPORTED)

    def exports() -> list[events.AssetExported]:
        records = asyncio.run(read_topic(settings.kafka_bootstrap, exported_topic, until=lambda f: False, timeout_s=2))
        return [events.AssetExported.FromString(record.value) for record in records]

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        seen = exports()
        served_degraded = {e.asset.asset_id for e in seen if e.route.degraded and not e.route.rerender}
        rerendered = [e.asset.asset_id for e in seen if e.route.rerender]
        done = {e.asset.asset_id for e in seen if not e.route.degraded}
        if set(everything) <= done and served_degraded <= set(rerendered):
            break
        time.sleep(1)
    assert set(degraded) <= served_degraded
    assert sorted(rerendered) == sorted(served_degraded), "each degraded asset is re-rendered exactly once"
    # The status view folds topics independently: it converges shortly after Kafka has it all.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all((pipeline.status(a) or {}).get("upgraded") for a in served_degraded):
        time.sleep(0.5)
    for asset_id in served_degraded:
        status = pipeline.status(asset_id) or {}
        assert status.get("upgraded") and status["stage"] == "exported", (asset_id, status.get("stage"))
        assert status["route"]["model_tier"] == "quality" and status["route"]["rerender"]
        assert status["stylized"]["model"].startswith("tiles-quality@")
        if asset_id in first_keys:
            assert sorted(r["object"]["key"] for r in status["renditions"]) == first_keys[asset_id]


def test_a_preview_behind_a_production_backlog_finishes_first(deployment: Deployment) -> None:
    # Production fails over into the fast pool (quality paused), building a fast backlog; a preview
    # submitted after it must still come out first.
    slow_fast = {"ATELIER_STYLIZER_WORKING_SIDE": "640", "ATELIER_STYLIZER_MAX_BATCH": "1"}
    pipeline = start(deployment, everything_but("stylizer-quality", "stylizer-fast"), fast=slow_fast)
    try:
        backlog = [submit(pipeline, "rush", seed=index) for index in range(14)]
        pipeline.wait_final(backlog, stages={"routed"}, timeout_s=30)
        on_fast = [a for a in backlog if (pipeline.status(a) or {})["route"]["model_tier"] == "fast"]
        assert len(on_fast) >= 4, "expected the backlog to fail over into the fast pool"
        preview = submit(pipeline, "rush", tier="preview", seed=999)
        assert routed(pipeline, preview)["model_tier"] == "fast"
        pipeline.services.start("stylizer-fast")
        finished = pipeline.wait_final([preview, *on_fast], timeout_s=120)
        assert all(status["stage"] == "exported" for status in finished.values())

        def at(asset_id: str, stage: str) -> datetime:
            return datetime.fromisoformat(finished[asset_id]["timeline"][stage])

        ahead = [a for a in on_fast if at(a, "stylized_at") < at(preview, "stylized_at")]
        assert len(ahead) <= 1, f"{len(ahead)} of {len(on_fast)} production requests were stylized before the preview"
        assert at(preview, "exported_at") < max(at(a, "exported_at") for a in on_fast)
    finally:
        pipeline.services.stop_all()


TRANSIT = timedelta(seconds=0.5)


def test_one_brands_burst_does_not_hold_back_anothers_requests(deployment: Deployment) -> None:
    """Fail-over off: fairness alone (round-robin by brand in the quality pool) serves the boutique brand's
    requests among the bulk brand's burst, not after it.

    Asserted on the order of service, not on wall-clock waits (a regression: the wait-based version
    failed on slow days): between a boutique request entering the pool and its stylization, the pool
    serves at most a few bulk requests (the one in flight, one taken before the request was fetched,
    one round-robin turn, and one per boutique request still ahead of it); without fairness it would
    serve the rest of the burst first.
    """
    pipeline = start(deployment, everything_but(), router={"ATELIER_FAILOVER_ENABLED": "false"})
    try:
        burst = [submit(pipeline, "bulk", seed=index) for index in range(60)]
        boutique = []
        for index in range(5):
            boutique.append(submit(pipeline, "boutique", seed=500 + index))
            time.sleep(0.4)
        finished = pipeline.wait_final(burst + boutique, timeout_s=300)

        def at(asset_id: str, stage: str) -> datetime:
            return datetime.fromisoformat(finished[asset_id]["timeline"][stage])

        last_boutique = max(at(b, "stylized_at") for b in boutique)
        after_all_boutique = [a for a in burst if at(a, "stylized_at") > last_boutique]
        assert len(after_all_boutique) >= 10, "the burst drained first: no contention"
        for request in boutique:
            # In the pool's queue from a transit after routing: the router's linger (5 ms), the pool's
            # fetch wait (100 ms) and its loop, on two busy cores. Bulk requests finished within that
            # transit were not chosen over it (a run on 2026-11-27 saw one such: 4 against 3).
            entered, served = at(request, "routed_at") + TRANSIT, at(request, "stylized_at")
            ahead = [b for b in boutique if at(b, "routed_at") < entered < at(b, "stylized_at")]
            overtaking = [a for a in burst if entered < at(a, "stylized_at") < served]
            assert len(overtaking) <= 3 + len(ahead), (
                f"{len(overtaking)} bulk requests were served while boutique request {request} waited "
                f"({len(ahead)} boutique requests ahead of it)"
            )
    finally:
        pipeline.services.stop_all()
