"""The project's Prometheus rules and Grafana dashboards, as the tests read them."""

import json
from typing import Any

import yaml

from tests.conftest import REPO

OBSERVABILITY = REPO / "deploy" / "observability"
RULES = OBSERVABILITY / "rules.yml"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))


def rule_groups() -> list[dict[str, Any]]:
    """The groups of the project's Prometheus rules."""
    return yaml.safe_load(RULES.read_text())["groups"]  # type: ignore[no-any-return]


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    """Every (panel title, target) of the project's Grafana dashboards."""
    return [
        (panel["title"], target)
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
