"""The whole pipeline on one machine: embedded infrastructure plus the services as processes.

LocalInfra owns the Kafka-protocol cluster, the S3 endpoint and a trace sink. LocalServices runs
the services (the five of the pipeline, with two stylizer pools, and the status service) as
separate processes against it, each with its own log file and HTTP port. `atelier local` and the
end-to-end tests both use these.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from atelier_devtools.local.broker import MockKafkaCluster
from atelier_devtools.local.longpoll import LongPolling
from atelier_devtools.local.s3 import S3Server, free_port
from atelier_devtools.local.traces import TraceSink
from atelier_shared.brands import BrandBook
from atelier_shared.provision import create_buckets
from atelier_shared.settings import AtelierSettings
from atelier_shared.storage import ObjectStore
from atelier_uploader.keys import ADMIN, KeyStore
from atelier_workshop.lite0 import export_classifier


@dataclass(frozen=True)
class ServiceSpec:
    """One process of the pipeline."""

    name: str
    module: str
    env: Mapping[str, str] = field(default_factory=dict)
    # Added to the starter's niceness (nice -n): work for throughput yields the cores to work someone waits on.
    nice: int = 0


SERVICES = (
    ServiceSpec("status", "atelier_status"),
    ServiceSpec("uploader", "atelier_uploader"),
    ServiceSpec("tagger", "atelier_tagger"),
    ServiceSpec("router", "atelier_router"),
    ServiceSpec("stylizer-quality", "atelier_stylizer", {"ATELIER_STYLIZER_POOL": "quality"}, nice=10),
    ServiceSpec("stylizer-fast", "atelier_stylizer", {"ATELIER_STYLIZER_POOL": "fast"}),
    ServiceSpec("exporter", "atelier_exporter"),
)
# For runs that exercise the pipeline rather than the model (tests, the reliability benchmark):
# small working sizes and one inference thread keep CPU time low.
LIGHT_STYLIZERS = {
    "stylizer-quality": {"ATELIER_STYLIZER_WORKING_SIDE": "128", "ATELIER_STYLIZER_THREADS": "1"},
    "stylizer-fast": {"ATELIER_STYLIZER_WORKING_SIDE": "96", "ATELIER_STYLIZER_THREADS": "1"},
}


# Chosen by `make bench` (bench/results/preview-cpu-2core.md). One broker for `atelier local`: each
# consumer then fetches from one broker instead of three (idle 18.9% of a core against 25.5%, previews
# no slower); the tests keep three, for outages. One partition per topic: `atelier local` runs one
# process per service, and every fetch lists each partition (idle 13.8-14.7% of a core against
# 17.3-17.4% with six, previews within noise). `atelier local` also long-polls (longpoll.py); the
# tests' clients reach the mock itself, which holds every fetch for its whole wait: short waits on
# the preview path there.
EMBEDDED_PREVIEW_FETCH_WAIT_MS = 25
EMBEDDED_BROKERS = 1
EMBEDDED_PARTITIONS = 1


class LocalInfra:
    """Embedded broker, S3 endpoint and trace sink, for one local run or one test session."""

    def __init__(
        self,
        workdir: Path,
        s3_port: int = 0,
        brokers: int = 3,
        partitions: int | None = None,
        long_polling: bool = False,
    ) -> None:
        self.workdir = workdir
        # Each topic's partitions, where not the settings' default.
        self.partitions = partitions
        workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = MockKafkaCluster(brokers)
        # In front of the cluster, answering fetches as Kafka does (longpoll.py); else clients reach the
        # mock itself, which holds every fetch for its whole wait.
        self.long_polling = LongPolling(self.cluster.listeners) if long_polling else None
        self.bootstrap = self.cluster.bootstrap
        self.s3 = S3Server(s3_port, log_file=workdir / "s3.log")
        self.traces = TraceSink(jsonl=workdir / "traces.jsonl")

    def start(self) -> None:
        """Start the relays, the S3 endpoint and the trace sink (the cluster runs from construction);
        export the tagger's classifier once (as the tagger image ships it)."""
        if self.long_polling is not None:
            ports = self.long_polling.start()
            for broker_id, port in enumerate(ports, start=1):
                self.cluster.advertise(broker_id, "127.0.0.1", port)
            self.bootstrap = ",".join(f"127.0.0.1:{port}" for port in ports)
        self.s3.start()
        self.traces.start()
        if not (self.classifier / "classifier.json").is_file():
            export_classifier(self.classifier)

    @property
    def classifier(self) -> Path:
        """The tagger's exported classifier."""
        return self.workdir / "classifier"

    def stop(self) -> None:
        """Stop everything; all topics and objects are lost."""
        self.traces.stop()
        self.s3.stop()
        try:
            if self.long_polling is not None:
                self.long_polling.stop()
        finally:
            self.cluster.close()

    def environment(self, topic_prefix: str = "atelier.", bucket_prefix: str = "atelier-") -> dict[str, str]:
        """ATELIER_* and OTEL_* variables that point a service at this infrastructure."""
        environment = {
            "ATELIER_KAFKA_BOOTSTRAP": self.bootstrap,
            "ATELIER_TOPIC_PREFIX": topic_prefix,
            "ATELIER_S3_ENDPOINT": self.s3.endpoint,
            "ATELIER_S3_ACCESS_KEY": "atelier",
            "ATELIER_S3_SECRET_KEY": "atelier-secret",
            "ATELIER_BUCKET_INBOX": f"{bucket_prefix}inbox",
            "ATELIER_BUCKET_ORIGINALS": f"{bucket_prefix}originals",
            "ATELIER_BUCKET_STYLIZED": f"{bucket_prefix}stylized",
            "ATELIER_BUCKET_RENDITIONS": f"{bucket_prefix}renditions",
            "ATELIER_BUCKET_MODELS": f"{bucket_prefix}models",
            "ATELIER_BUCKET_KEYS": f"{bucket_prefix}keys",
            "ATELIER_CLASSIFIER_DIR": str(self.classifier.resolve()),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{self.traces.endpoint}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # The studio's trace waterfall reads the sink as it reads Jaeger's query service.
            "ATELIER_TRACE_QUERY_URL": self.traces.endpoint,
        }
        if self.partitions:
            environment["ATELIER_TOPIC_PARTITIONS"] = str(self.partitions)
        if self.long_polling is None:
            # The mock holds every fetch for its whole wait: short on the preview path, the default elsewhere.
            # Long polling keeps Kafka's default waits, as a deployment runs.
            environment["ATELIER_KAFKA_PREVIEW_FETCH_WAIT_MS"] = str(EMBEDDED_PREVIEW_FETCH_WAIT_MS)
        return environment

    def provision(self, settings: AtelierSettings) -> None:
        """Create the deployment's topics and buckets (a deploy step against real Kafka and MinIO)."""
        self.cluster.create_topics(settings.topics.provisioned_names(), settings.topic_partitions)
        asyncio.run(create_buckets(settings))

    def create_keys(self, settings: AtelierSettings) -> dict[str, str]:
        """A new API key for each brand in the guidelines folder, and an admin key (under ADMIN)."""
        keys = KeyStore(ObjectStore(settings), settings.bucket_keys)
        brands = [*BrandBook.load(settings.brands_dir).names(), ADMIN]

        async def create() -> dict[str, str]:
            return {brand: (await keys.create(brand, label="atelier local"))[1] for brand in brands}

        return asyncio.run(create())


class LocalServices:
    """The pipeline's services as child processes."""

    def __init__(
        self,
        environment: Mapping[str, str],
        logs: Path,
        specs: tuple[ServiceSpec, ...] = SERVICES,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self._environment = dict(environment)
        self._logs = logs
        self._cwd = cwd
        logs.mkdir(parents=True, exist_ok=True)
        self.specs = {spec.name: spec for spec in specs}
        self._overrides = {name: dict(env) for name, env in (overrides or {}).items()}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        # Guards _processes between the caller and a Supervisor's thread.
        self._lock = threading.RLock()
        # Each service's operations port and the uploader's API port, fixed up front so services can find each other.
        self.ops_ports = {name: free_port() for name in self.specs}
        self.api_port = int(self._environment.get("ATELIER_API_PORT") or free_port())

    def env_for(self, name: str) -> dict[str, str]:
        """The full environment a service process gets."""
        env = {**os.environ, **self._environment, **self.specs[name].env, "ATELIER_OPS_PORT": str(self.ops_ports[name])}
        if name == "uploader":
            env["ATELIER_API_PORT"] = str(self.api_port)
            env.setdefault("ATELIER_STATUS_URL", self.url("status"))
        env.update(self._overrides.get(name, {}))
        return env

    def start(self, name: str, extra: Mapping[str, str] | None = None) -> None:
        """Start one service (again, after a stop), with `extra` variables for this start only."""
        log = open(self.log_file(name), "ab")  # noqa: SIM115 (the child owns it)
        with self._lock:
            spec = self.specs[name]
            niced = ["nice", "-n", str(spec.nice)] if spec.nice else []
            self._processes[name] = subprocess.Popen(
                [*niced, sys.executable, "-m", spec.module],
                env={**self.env_for(name), **(extra or {})},
                cwd=self._cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        log.close()

    def log_file(self, name: str) -> Path:
        """Where a service's output goes."""
        return self._logs / f"{name}.log"

    def died(self) -> dict[str, int]:
        """Services that exited without being stopped, with their exit status."""
        with self._lock:
            return {name: code for name, process in self._processes.items() if (code := process.poll()) is not None}

    def restart(self, name: str) -> None:
        """Start a service again if it is still dead and was not stopped meanwhile."""
        with self._lock:
            process = self._processes.get(name)
            if process is not None and process.poll() is not None:
                self.start(name)

    def forget(self, name: str) -> None:
        """Leave a dead service down (the supervisor gave up on it)."""
        with self._lock:
            self._processes.pop(name, None)

    def start_ready(self, names: list[str] | None = None) -> None:
        """Start services (every one by default) and wait until each is ready; if one never is, stop all
        of them before raising, so a failed start leaves nothing running."""
        for name in names or list(self.specs):
            self.start(name)
        try:
            self.wait_ready(names)
        except BaseException:
            self.stop_all()
            raise

    def url(self, name: str, path: str = "") -> str:
        """http://host:port of a service's operations endpoints (health, readiness, metrics)."""
        return f"http://127.0.0.1:{self.ops_ports[name]}{path}"

    def api_url(self, path: str = "") -> str:
        """http://host:port of the uploader's API."""
        return f"http://127.0.0.1:{self.api_port}{path}"

    def wait_ready(self, names: list[str] | None = None, timeout_s: float = 180.0) -> None:
        """Wait until each service answers /readyz with 200; raise naming the laggards and their logs."""
        pending = set(names or self._processes)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                process = self._processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_file(name)}")
                try:
                    with urllib.request.urlopen(self.url(name, "/readyz"), timeout=2) as response:
                        if response.status == 200:
                            pending.discard(name)
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout_s} s: {sorted(pending)}; logs in {self._logs}")

    def stop(self, name: str, kill: bool = False, timeout_s: float = 30.0) -> int | None:
        """Stop a service: SIGTERM and wait (SIGKILL after the timeout), or SIGKILL at once."""
        with self._lock:
            process = self._processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        """Stop every service, the uploader first."""
        with self._lock:
            names = list(self._processes)
        for name in names:
            self.stop(name)

    def pid(self, name: str) -> int:
        """A running service's process id."""
        with self._lock:
            return self._processes[name].pid

    def running(self, name: str) -> bool:
        """Whether a service's process is alive."""
        with self._lock:
            process = self._processes.get(name)
        return process is not None and process.poll() is None
