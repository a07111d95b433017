"""`atelier local`: the whole pipeline on this machine, with the sample images pushed through.

Starts the embedded Kafka-protocol broker, S3 endpoint and trace sink, provisions topics and
buckets, publishes the shipped models, starts the five services (two stylizer pools) as separate
processes, submits the samples by all three entry paths (HTTP, bucket drop, intake event), prints
a per-asset summary, saves renditions under ./out/, writes the endpoints to ENDPOINTS_FILE, and
keeps serving until Ctrl-C (or exits with --demo).
"""

import argparse
import asyncio
import mimetypes
import signal
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from atelier_client.cli import follow
from atelier_client.client import ApiError, AtelierClient, Submission
from atelier_client.report import print_summary
from atelier_devtools.local.notifications import minio_notification
from atelier_devtools.local.s3 import free_port, port_is_free
from atelier_devtools.local.samples import write_samples
from atelier_devtools.local.stack import LocalInfra, LocalServices
from atelier_shared import assets, events, topics
from atelier_shared.kafka import EventProducer, Outgoing
from atelier_shared.settings import ENDPOINTS_FILE, AtelierSettings, settings_from
from atelier_shared.storage import ObjectStore

WORKDIR = Path(".atelier")
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

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by `atelier local` while it runs; services and the CLI read it as defaults.",
            f"ATELIER_API_URL={self.api}",
            *(f"{name}={value}" for name, value in sorted(self.environment.items()) if name.startswith("ATELIER_")),
            f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={self.otlp}/v1/traces",
        ]
        path.write_text("\n".join(lines) + "\n")


async def _publish_models(settings: AtelierSettings, console: Console) -> None:
    from atelier_stylizer.registry import ModelRegistry
    from atelier_workshop.defaults import publish_defaults

    registry = ModelRegistry.open(f"s3://{settings.bucket_models}", ObjectStore(settings), WORKDIR / "model-cache")
    published = await publish_defaults(registry)
    if not published:
        raise SystemExit("no shipped models found: run `make models` to train them")
    console.print(f"models: {', '.join(manifest.ref for manifest in published)}")


async def _submit_samples(settings: AtelierSettings, api: str, samples: list[Path]) -> list[Submission]:
    """Send each sample by its planned path; the submissions with their asset ids."""
    store = ObjectStore(settings)
    producer = EventProducer(settings.kafka_bootstrap, client_id="atelier-cli")
    await producer.start()
    submissions = []
    try:
        async with AtelierClient(api) as client:
            for path in samples:
                how, brand, tier = _SAMPLE_PLAN.get(path.name, ("http", "acme", "production"))
                submission = Submission(path)
                data = path.read_bytes()
                if how == "http":
                    try:
                        submission.asset_id = await client.submit(path, brand, tier)
                    except ApiError as exc:
                        submission.error = str(exc)
                else:
                    key = f"{brand}/{tier}/{path.name}"
                    await store.put(settings.bucket_inbox, key, data, "application/octet-stream")
                    stored = await store.stat(settings.bucket_inbox, key)
                    assert stored is not None
                    if how == "drop":
                        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                        record_key, value = minio_notification(
                            settings.bucket_inbox, key, stored.size, stored.etag, content_type
                        )
                        await producer.send_raw(settings.topics.name(topics.INBOX), record_key, value, [])
                        submission.asset_id = assets.asset_id_for_object(settings.bucket_inbox, key, stored.etag)
                    else:
                        submission.asset_id = assets.asset_id_for_object(settings.bucket_inbox, key, stored.etag)
                        event = events.AssetSubmitted(
                            asset_id=submission.asset_id,
                            brand=brand,
                            tier=events.tier_from_name(tier),
                            bucket=settings.bucket_inbox,
                            key=key,
                            reference=f"demo:{path.name}",
                        )
                        await producer.send(Outgoing(settings.topics.name(topics.INTAKE), submission.asset_id, event))
                submissions.append(submission)
    finally:
        await producer.stop()
    return submissions


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_local(args: argparse.Namespace) -> int:
    """Run the local stack; the exit status (with --demo: non-zero when any sample failed)."""
    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)
    WORKDIR.mkdir(exist_ok=True)
    for log in (WORKDIR / "logs").glob("*.log"):
        log.unlink()
    api_port = args.api_port if port_is_free(args.api_port) else free_port()
    infra = LocalInfra(WORKDIR, s3_port=args.s3_port if port_is_free(args.s3_port) else 0)
    services: LocalServices | None = None
    try:
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
        asyncio.run(_publish_models(settings, console))
        services = LocalServices(environment, WORKDIR / "logs")
        services.start_all()
        with console.status("starting uploader, tagger, router, stylizer (quality, fast) and exporter"):
            services.wait_ready()
        endpoints = Endpoints(
            f"http://127.0.0.1:{api_port}",
            infra.cluster.bootstrap,
            infra.s3.endpoint,
            infra.traces.endpoint,
            environment,
        )
        endpoints.write(ENDPOINTS_FILE)
        console.print(
            Panel.fit(
                f"API           {endpoints.api}  (POST /v1/assets, GET /v1/assets/<id>, /metrics)\n"
                f"Kafka         {endpoints.kafka}  (topics {settings.topic_prefix}*)\n"
                f"S3            {endpoints.s3}  access key {settings.s3_access_key}, "
                f"secret {settings.s3_secret_key.get_secret_value()}\n"
                f"traces        {WORKDIR / 'traces.jsonl'}  (OTLP/HTTP sink at {endpoints.otlp})\n"
                f"service logs  {WORKDIR / 'logs'}\n"
                f"endpoints     {ENDPOINTS_FILE}",
                title="Atelier is running",
            )
        )
        samples = write_samples(WORKDIR / "samples") if args.samples is None else sorted(Path(args.samples).iterdir())
        submissions = asyncio.run(_submit_samples(settings, endpoints.api, samples))
        saved = asyncio.run(follow(endpoints.api, submissions, Path(args.out), args.timeout, console))
        print_summary(console, submissions, saved)
        failed = [s for s in submissions if s.stage != "exported"]
        console.print(f"{len(submissions) - len(failed)} of {len(submissions)} exported; renditions under {args.out}/")
        if args.demo:
            return 1 if failed else 0
        console.print("serving until Ctrl-C (try: atelier submit <folder> --brand acme)")
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        if services is not None:
            services.stop_all()
        infra.stop()
        ENDPOINTS_FILE.unlink(missing_ok=True)
