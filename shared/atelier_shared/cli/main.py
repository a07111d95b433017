"""`atelier`: run services or the whole local stack, submit images, follow assets, train models."""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from atelier_shared.settings import ENDPOINTS_FILE

SERVICES = {
    "uploader": "atelier_uploader",
    "tagger": "atelier_tagger",
    "router": "atelier_router",
    "stylizer": "atelier_stylizer",
    "exporter": "atelier_exporter",
}
# Commands the stylizer package implements (training needs torch, which only it depends on).
_STYLIZER_COMMANDS = ("train", "models")


def api_url(explicit: str | None) -> str:
    """--api, else ATELIER_API_URL, else the running local stack's endpoints file, else :8080."""
    if explicit:
        return explicit
    if os.environ.get("ATELIER_API_URL"):
        return os.environ["ATELIER_API_URL"]
    if ENDPOINTS_FILE.is_file():
        for line in ENDPOINTS_FILE.read_text().splitlines():
            if line.startswith("ATELIER_API_URL="):
                return line.split("=", 1)[1]
    return "http://127.0.0.1:8080"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="start everything on this machine and push the sample images through")
    local.add_argument("--demo", action="store_true", help="exit after the samples (non-zero if any failed)")
    local.add_argument("--api-port", type=int, default=8080)
    local.add_argument("--s3-port", type=int, default=9000)
    local.add_argument("--brands", default="deploy/brands", help="folder of brand guidelines")
    local.add_argument("--samples", help="folder of images to push through instead of the generated samples")
    local.add_argument("--out", default="out", help="where renditions are saved")
    local.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the samples")

    service = sub.add_parser("service", help="run one service in the foreground (settings from ATELIER_* variables)")
    service.add_argument("name", choices=sorted(SERVICES))
    service.add_argument("--pool", choices=["quality", "fast"], help="stylizer pool (ATELIER_STYLIZER_POOL)")

    submit = sub.add_parser("submit", help="upload images (files or folders), wait for them, save renditions")
    submit.add_argument("paths", type=Path, nargs="+")
    submit.add_argument("--brand", required=True)
    submit.add_argument("--tier", choices=["preview", "production"], default="production")
    submit.add_argument("--style", default="", help="a style the brand allows (default: its rules decide)")
    submit.add_argument("--api", help="API URL (default: the local stack's)")
    submit.add_argument("--out", default="out")
    submit.add_argument("--no-wait", action="store_true", help="print the asset ids and return")
    submit.add_argument("--timeout", type=float, default=600.0)

    provision = sub.add_parser("provision", help="create topics and buckets on real Kafka and MinIO (a deploy step)")
    provision.add_argument("--replication", type=int, default=1)

    status = sub.add_parser("status", help="show an asset's status")
    status.add_argument("asset_id")
    status.add_argument("--api")

    for name in _STYLIZER_COMMANDS:
        sub.add_parser(name, help=f"{name} (see `atelier {name} --help`)", add_help=False)
    return parser


async def _submit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from atelier_shared.cli.client import ApiError, AtelierClient, Submission, image_files
    from atelier_shared.cli.local import follow
    from atelier_shared.cli.report import print_summary

    console = Console()
    api = api_url(args.api)
    submissions = []
    async with AtelierClient(api) as client:
        for path in image_files(args.paths):
            submission = Submission(path)
            try:
                submission.asset_id = await client.submit(path, args.brand, args.tier, args.style)
            except ApiError as exc:
                submission.error = str(exc)
            print(f"{path}: {submission.asset_id or submission.error}", flush=True)  # One line per file, for scripts.
            submissions.append(submission)
    if args.no_wait:
        return 0 if all(s.asset_id for s in submissions) else 1
    saved = await follow(api, submissions, Path(args.out), args.timeout, console)
    print_summary(console, submissions, saved)
    return 0 if all(s.stage == "exported" for s in submissions) else 1


async def _status(args: argparse.Namespace) -> int:
    from atelier_shared.cli.client import AtelierClient

    async with AtelierClient(api_url(args.api)) as client:
        status = await client.status(args.asset_id)
    if status is None:
        print(f"no asset {args.asset_id}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The `atelier` entry point."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _STYLIZER_COMMANDS:
        try:
            from atelier_stylizer.commands import main as stylizer_main
        except ImportError:
            print(f"`atelier {argv[0]}` needs the stylizer package: pip install -e services/stylizer", file=sys.stderr)
            return 2
        return stylizer_main(argv)
    args = _parser().parse_args(argv)
    if args.command == "local":
        from atelier_shared.cli.local import run_local

        return run_local(args)
    if args.command == "service":
        if args.pool:
            os.environ["ATELIER_STYLIZER_POOL"] = args.pool
        os.execv(sys.executable, [sys.executable, "-m", SERVICES[args.name]])
    if args.command == "submit":
        return asyncio.run(_submit(args))
    if args.command == "status":
        return asyncio.run(_status(args))
    if args.command == "provision":
        from atelier_shared.provision import main as provision_main

        provision_main(["--replication", str(args.replication)])
        return 0
    return 2
