"""The dashboards and Prometheus rules against the code: every metric they name exists, and every label
in their selectors and in the legends of recorded series; the rules pass promtool's check and its
tests of each alert (deploy/observability/rules.test.yml); every brand's targets are boundaries of the
artist-wait histogram; the Kubernetes PrometheusRule carries the same rules. (That every expression
returns data from a real Prometheus scraping a working pipeline: tests/e2e/test_failover.py.)"""

import importlib
import json
import pkgutil
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

import atelier_exporter
import atelier_router
import atelier_shared
import atelier_status
import atelier_stylizer
import atelier_tagger
import atelier_uploader
from atelier_exporter.exporter import ARTIST_WAIT_SECONDS
from atelier_shared.brands import load_guidelines
from tests.conftest import REPO
from tests.observability import DASHBOARDS, OBSERVABILITY, RULES, dashboard_targets, rule_groups

PROMTOOL = Path("/usr/bin/promtool")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
_SELECTOR = re.compile(r"\b(atelier_[a-z0-9_]+)(\{[^}]*\})?")
_GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
_PACKAGES = (
    atelier_shared,
    atelier_uploader,
    atelier_tagger,
    atelier_router,
    atelier_stylizer,
    atelier_exporter,
    atelier_status,
)


def dashboard_expressions() -> list[str]:
    return [target["expr"] for _, target in dashboard_targets()]


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in rule_groups() for rule in group["rules"]]


def recorded() -> dict[str, str]:
    """Each recorded series' name and its expression."""
    return {rule["record"]: rule["expr"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def code_metrics() -> dict[str, set[str]]:
    """Every sample name the code's metrics expose (the services' modules that define them), with its labels."""
    metrics: dict[str, set[str]] = {}
    modules = [
        importlib.import_module(info.name)
        for package in _PACKAGES
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        if not info.name.endswith("__main__") and "._proto" not in info.name
    ]
    for module in modules:
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                labels = set(metric._labelnames)  # noqa: SLF001 (prometheus_client keeps them there)
                for suffix in SUFFIXES[metric._type]:  # noqa: SLF001
                    metrics[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())  # noqa: SLF001
    return metrics


def kept_labels(expression: str) -> set[str]:
    """The labels an aggregation keeps (its outermost `by`)."""
    groups = _GROUPING.findall(expression)
    return {label.strip() for label in groups[0].split(",")} - {"le"} if groups else set()


def test_every_metric_and_label_that_dashboards_and_rules_name_exists_in_the_code() -> None:
    metrics = code_metrics()
    assert "atelier_artist_wait_seconds_bucket" in metrics and "atelier_failover_switches_total" in metrics
    records = recorded()
    expressions = dashboard_expressions() + rule_expressions()
    assert len(expressions) > 20
    for expression in expressions:
        for name, selector in _SELECTOR.findall(expression):
            assert name in metrics, f"{name} (in {expression!r}) is no metric of the code"
            for label in re.findall(r"([a-z_]+)\s*(?:=|!=|=~|!~)", selector):
                assert label in metrics[name], f"{name} has no label {label!r}"
        for name in re.findall(r"\b(atelier:[a-z0-9_:]+)", expression):
            assert name in records, f"{name} (in {expression!r}) is recorded by no rule"
    # A panel that shows a recorded series names (in its legend and selector) only labels the rule keeps.
    for title, target in dashboard_targets():
        shown = re.fullmatch(r"(atelier:[a-z0-9_:]+)(\{[^}]*\})?", target["expr"])
        if shown is not None:
            named = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
            named |= set(re.findall(r"([a-z_]+)\s*=", shown.group(2) or ""))
            assert named <= kept_labels(records[shown.group(1)]), (title, named)


def promtool(*arguments: str) -> str:
    assert PROMTOOL.exists(), "install Debian's prometheus (make test-tools)"
    result = subprocess.run([str(PROMTOOL), *arguments], capture_output=True, text=True, timeout=120, cwd=OBSERVABILITY)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rules_pass_promtool_and_each_alert_fires_when_it_should() -> None:
    assert f"SUCCESS: {len(rule_expressions())} rules found" in promtool("check", "rules", str(RULES))
    tested = promtool("test", "rules", "rules.test.yml")
    assert "SUCCESS" in tested
    cases = (OBSERVABILITY / "rules.test.yml").read_text()
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                assert f'alertname="{rule["alert"]}",alertstate="firing"' in cases, f"{rule['alert']} has no test"


def test_every_brands_targets_are_boundaries_of_the_artist_wait_histogram() -> None:
    """Regression: acme's 4 s preview target fell between the 3 s and 5 s buckets, so the p95 was
    interpolated across them and the wait alert fired for waits all within target."""
    buckets = set(ARTIST_WAIT_SECONDS._upper_bounds)  # noqa: SLF001
    for path in sorted((REPO / "deploy" / "brands").glob("*.yaml")):
        for tier, target_ms in load_guidelines(path).latency_targets_ms.items():
            assert target_ms / 1000 in buckets, f"{path.name}: {tier} target {target_ms} ms is no bucket boundary"


def test_the_kubernetes_prometheus_rule_carries_the_same_rules() -> None:
    rule = yaml.safe_load((REPO / "deploy" / "monitoring" / "rules.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == rule_groups()


def test_the_dashboards_read_the_provisioned_data_sources() -> None:
    sources = yaml.safe_load((OBSERVABILITY / "grafana" / "datasources" / "prometheus.yaml").read_text())
    uids = {source["uid"] for source in sources["datasources"]}
    prometheus = next(source for source in sources["datasources"] if source["type"] == "prometheus")
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "jaeger"}]
    assert "jaeger" in uids
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in uids, panel["title"]
