"""A real Prometheus (Debian's package) scraping the services of a test's pipeline, with the project's rules."""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from atelier_devtools.local.s3 import free_port
from atelier_devtools.local.stack import LocalServices
from tests.observability import rule_groups

PROMETHEUS = Path("/usr/bin/prometheus")


@dataclass
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str

    def get(self, path: str, **query: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result (raises on an expression Prometheus refuses)."""
        data = self.get("/api/v1/query", query=expression)
        assert data["resultType"] == "vector", data
        return data["result"]  # type: ignore[no-any-return]

    def exemplars(self, expression: str, seconds: float = 3600) -> list[dict[str, Any]]:
        now = time.time()
        return self.get("/api/v1/query_exemplars", query=expression, start=str(now - seconds), end=str(now))  # type: ignore[no-any-return]


@contextmanager
def scraping(services: LocalServices, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus scraping every service's operations port every 2 s, evaluating the project's rules as
    often (their intervals shortened, their expressions as shipped), with exemplar storage on."""
    assert PROMETHEUS.exists(), "install Debian's prometheus (make test-tools)"
    workdir.mkdir(parents=True, exist_ok=True)
    rules = {"groups": rule_groups()}
    for group in rules["groups"]:
        group["interval"] = "2s"
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(workdir / "rules.yml")],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [services.url(name).removeprefix("http://")]}]}
            for name in services.specs
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"prometheus exited; see {workdir / 'prometheus.log'}"
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "prometheus not ready within 60 s"
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
