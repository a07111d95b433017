"""`atelier local`: the whole pipeline on this machine, with the sample images pushed through.

Starts the embedded Kafka-protocol broker, S3 endpoint and trace sink, provisions topics and
buckets, publishes the shipped models, starts the services (two stylizer pools) as separate
processes, submits the samples by all three entry paths (HTTP, bucket drop, intake event), prints
a per-asset summary, saves renditions under ./out/, writes the endpoints to ENDPOINTS_FILE, and
keeps serving until Ctrl-C (or exits with --demo).
"""

import argparse
import asyncio
import mimetypes
import signal
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from atelier_client.cli import follow, key_variable
from atelier_client.client import ApiError, AtelierClient, Submission
from atelier_client.report import fields, print_summary
from atelier_devtools.local.notifications import minio_notification
from atelier_devtools.local.s3 import free_port, port_is_free
from atelier_devtools.local.samples import write_samples
from atelier_devtools.local.stack import EMBEDDED_BROKERS, EMBEDDED_PARTITIONS, LocalInfra, LocalServices
from atelier_devtools.local.supervisor import Exit, Supervisor
from atelier_shared import AtelierSettings, EventProducer, ObjectStore, Outgoing, assets, events, topics
from atelier_shared.settings import ENDPOINTS_FILE, settings_from
from atelier_uploader.keys import ADMIN

WORKDIR = Path(".atelier")
# The bucket of the other system whose upload events the samples include.
PARTNER_BUCKET = "partner-uploads"
# Which sample goes in by which path, under which brand and tier (the rest: HTTP, production).
_SAMPLE_PLAN = {
    "product-shot.jpg": ("http", "acme", "production"),
    "landscape.jpg": ("http", "acme", "preview"),
    "portrait-exif-rotated.jpg": ("http", "lumen", "production"),
    "cutout.png": ("drop", "lumen", "production"),
    "night-scene.jpg": ("event", "acme", "production"),
    "texture.webp": ("http", "lumen", "production"),
}


@dataclass
class Endpoints:
    """Where everything listens, as written to the endpoints file."""

    api: str
    kafka: str
    s3: str
    otlp: str
    environment: dict[str, str]
    # A development API key per local brand, and the admin key under ADMIN.
    keys: dict[str, str]
    # What the supervisor last said of each service that died.
    status: dict[str, str] = field(default_factory=dict)

    def key_variables(self) -> dict[str, str]:
        """ATELIER_API_KEY_<BRAND> (and _ADMIN): what the CLI reads from the endpoints file."""
        return {key_variable(None if brand == ADMIN else brand): key for brand, key in self.keys.items()}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by `atelier local` while it runs; services and the CLI read it as defaults.",
            f"ATELIER_API_URL={self.api}",
            *(f"{name}={key}" for name, key in sorted(self.key_variables().items())),
            *(f"{name}={value}" for name, value in sorted(self.environment.items()) if name.startswith("ATELIER_")),
            f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={self.otlp}/v1/traces",
            *(f"# status {name}: {line}" for name, line in sorted(self.status.items())),
        ]
        path.write_text("\n".join(lines) + "\n")

    def panel(self, settings: AtelierSettings) -> Panel:
        """What a developer needs to know, on the console (values wrap under their column)."""
        rows = {
            "studio": f"{self.api}/studio/  (sign in with a brand's key below; drop images, watch them)",
            "API": f"{self.api}  (POST /v1/assets, GET /v1/assets/<id>; contract at {self.api}/docs)",
            "API keys": f"{', '.join(sorted(self.key_variables()))} (below, and in the endpoints file)",
            "Kafka": f"{self.kafka}  (topics {settings.topic_prefix}*)",
            "S3": f"{self.s3}  access key {settings.s3_access_key}, secret {settings.s3_secret_key.get_secret_value()}",
            "traces": f"{WORKDIR / 'traces.jsonl'}  (OTLP/HTTP sink at {self.otlp})",
            "service logs": str(WORKDIR / "logs"),
            "endpoints": str(ENDPOINTS_FILE),
        }
        return Panel(fields(rows, label_style="bold"), title="Atelier is running", expand=False)


async def _publish_models(settings: AtelierSettings, console: Console) -> None:
    from atelier_stylizer.registry import ModelRegistry
    from atelier_workshop.defaults import publish_defaults

    registry = ModelRegistry.open(f"s3://{settings.bucket_models}", ObjectStore(settings), WORKDIR / "model-cache")
    published = await publish_defaults(registry)
    if not published:
        raise SystemExit("no shipped models found: run `make models` to train them")
    console.print(f"models: {', '.join(manifest.ref for manifest in published)}", soft_wrap=True)


class _SampleSender:
    """Sends samples in by each of the three entry paths."""

    def __init__(self, settings: AtelierSettings, clients: dict[str, AtelierClient], producer: EventProducer) -> None:
        self._settings = settings
        self._store = ObjectStore(settings)
        self._clients = clients
        self._producer = producer

    async def send(self, path: Path) -> Submission:
        how, brand, tier = _SAMPLE_PLAN.get(path.name, ("http", "acme", "production"))
        submission = Submission(path)
        if how == "http":
            try:
                submission.asset_id = await self._clients[brand].submit(path, brand, tier)
            except ApiError as exc:
                submission.error = str(exc)
            return submission
        # A drop lands in the inbox; another system's upload event names its own bucket.
        bucket = self._settings.bucket_inbox if how == "drop" else PARTNER_BUCKET
        key = f"{brand}/{tier}/{path.name}"
        await self._store.ensure_buckets([bucket])
        await self._store.put(bucket, key, path.read_bytes(), "application/octet-stream")
        stored = await self._store.stat(bucket, key)
        assert stored is not None
        submission.asset_id = assets.asset_id_for_object(bucket, key, stored.etag)
        if how == "drop":  # What MinIO publishes when an object lands in the inbox bucket.
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            record_key, value = minio_notification(bucket, key, stored.size, stored.etag, content_type)
            await self._producer.send_raw(self._settings.topics.name(topics.INBOX), record_key, value, [])
        else:  # What another system publishes for an object it stored.
            event = events.AssetSubmitted(
                asset_id=submission.asset_id,
                brand=brand,
                tier=events.tier_from_name(tier),
                bucket=bucket,
                key=key,
                reference=f"demo:{path.name}",
            )
            await self._producer.send([Outgoing(topics.INTAKE, event)])
        return submission


async def _submit_samples(settings: AtelierSettings, endpoints: Endpoints, samples: list[Path]) -> list[Submission]:
    """Send each sample by its planned path, over HTTP with its brand's key; the submissions with their asset ids."""
    producer = EventProducer(settings.kafka_options(), "atelier-cli", settings.topics)
    await producer.start()
    clients = {brand: AtelierClient(endpoints.api, key) for brand, key in endpoints.keys.items()}
    try:
        sender = _SampleSender(settings, clients, producer)
        return [await sender.send(path) for path in samples]
    finally:
        for client in clients.values():
            await client.close()
        await producer.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _start(args: argparse.Namespace, infra: LocalInfra, console: Console) -> tuple[Endpoints, LocalServices]:
    """Infrastructure, topics and buckets, the shipped models, then the services; where they listen."""
    api_port = args.api_port if args.api_port and port_is_free(args.api_port) else free_port()
    with console.status("starting the embedded Kafka-protocol broker, S3 endpoint and trace sink"):
        infra.start()
    environment = {
        **infra.environment(),
        "ATELIER_BRANDS_DIR": str(Path(args.brands).resolve()),
        "ATELIER_MODEL_CACHE_DIR": str((WORKDIR / "model-cache").resolve()),
        "ATELIER_API_PORT": str(api_port),
    }
    settings = settings_from(AtelierSettings, environment)
    infra.provision(settings)
    keys = infra.create_keys(settings)
    asyncio.run(_publish_models(settings, console))
    services = LocalServices(environment, WORKDIR / "logs")
    with console.status("starting uploader, tagger, router, stylizer (quality, fast) and exporter"):
        services.start_ready()
    api = f"http://127.0.0.1:{api_port}"
    endpoints = Endpoints(api, infra.bootstrap, infra.s3.endpoint, infra.traces.endpoint, environment, keys)
    return endpoints, services


def _run_samples(args: argparse.Namespace, endpoints: Endpoints, console: Console) -> bool:
    """Push the samples through, print the summary, save renditions; whether every one was exported."""
    settings = settings_from(AtelierSettings, endpoints.environment)
    samples = write_samples(WORKDIR / "samples") if args.samples is None else sorted(Path(args.samples).iterdir())
    submissions = asyncio.run(_submit_samples(settings, endpoints, samples))
    saved = asyncio.run(
        follow(endpoints.api, endpoints.keys[ADMIN], submissions, Path(args.out), args.timeout, console)
    )
    print_summary(console, submissions, saved)
    failed = [s for s in submissions if s.stage != "exported"]
    console.print(f"{len(submissions) - len(failed)} of {len(submissions)} exported; renditions under {args.out}/")
    return not failed


def _report_exit(event: Exit, endpoints: Endpoints, console: Console) -> None:
    """Say on the console, and in the endpoints file, that a service died and what happens next."""
    died = f"{event.name} exited with {event.returncode} (crash {event.crashes})"
    line = (
        f"{died}: given up, it stays down"
        if event.restart_in_s is None
        else f"{died}: restart in {event.restart_in_s:.0f} s"
    )
    console.print(f"[bold red]supervisor[/] {line} (log: {WORKDIR / 'logs' / (event.name + '.log')})")
    endpoints.status[event.name] = line
    endpoints.write(ENDPOINTS_FILE)


def run_local(args: argparse.Namespace) -> int:
    """Run the local stack; the exit status (with --demo: non-zero when any sample failed)."""
    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)
    WORKDIR.mkdir(exist_ok=True)
    for log in (WORKDIR / "logs").glob("*.log"):
        log.unlink()
    s3_port = args.s3_port if port_is_free(args.s3_port) else 0
    infra = LocalInfra(
        WORKDIR, s3_port=s3_port, brokers=EMBEDDED_BROKERS, partitions=EMBEDDED_PARTITIONS, long_polling=True
    )
    services: LocalServices | None = None
    supervisor: Supervisor | None = None
    try:
        endpoints, services = _start(args, infra, console)
        endpoints.write(ENDPOINTS_FILE)
        supervisor = Supervisor(services, lambda event: _report_exit(event, endpoints, console))
        supervisor.start()
        console.print(endpoints.panel(settings_from(AtelierSettings, endpoints.environment)))
        for name, key in sorted(endpoints.key_variables().items()):
            console.print(f"export {name}={key}", soft_wrap=True, highlight=False)
        exported = _run_samples(args, endpoints, console)
        if args.demo:
            return 0 if exported else 1
        console.print("serving until Ctrl-C (try: atelier submit <folder> --brand acme)")
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        if supervisor is not None:
            supervisor.stop()
        if services is not None:
            services.stop_all()
        infra.stop()
        ENDPOINTS_FILE.unlink(missing_ok=True)
