"""`atelier`: submit images and follow them; other packages add their commands to it.

The client package itself answers `atelier submit` and `atelier status` (HTTP only). The developer
tools (`atelier local`, `atelier service`, `atelier provision`) and the model workshop (`atelier
train`, `atelier models`) register theirs under the `atelier.commands` entry-point group: each is
a function taking the arguments after its name and returning an exit status.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from atelier_client.client import FINAL_STAGES, ApiError, AtelierClient, Submission, image_files
from atelier_client.report import print_summary

# The endpoints file a running local stack (`atelier local`) writes.
ENDPOINTS_FILE = Path(".atelier/endpoints.env")
# Where each command that another package adds comes from, for a helpful message when it is missing.
_PROVIDERS = {
    "local": "atelier-devtools (tools/devtools)",
    "service": "atelier-devtools (tools/devtools)",
    "provision": "atelier-devtools (tools/devtools)",
    "train": "atelier-workshop (tools/workshop)",
    "models": "atelier-workshop (tools/workshop)",
    "keys": "atelier-uploader (services/uploader)",
    "dead-letters": "atelier-shared (shared)",
}


def _from_endpoints(name: str) -> str:
    """A variable of the running local stack's endpoints file, or ""."""
    if ENDPOINTS_FILE.is_file():
        for line in ENDPOINTS_FILE.read_text().splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1]
    return ""


def api_url(explicit: str | None) -> str:
    """--api, else ATELIER_API_URL, else the running local stack's endpoints file, else :8080."""
    return (
        explicit or os.environ.get("ATELIER_API_URL") or _from_endpoints("ATELIER_API_URL") or "http://127.0.0.1:8080"
    )


def key_variable(brand: str | None) -> str:
    """The endpoints file's variable holding the local stack's key for a brand (None: the admin key)."""
    return f"ATELIER_API_KEY_{(brand or 'admin').upper().replace('-', '_')}"


def api_key(explicit: str | None, brand: str | None) -> str:
    """--api-key, else ATELIER_API_KEY, else the local stack's key for the brand (its admin key without one)."""
    return explicit or os.environ.get("ATELIER_API_KEY") or _from_endpoints(key_variable(brand))


def _explain(exc: ApiError | aiohttp.ClientError | TimeoutError, api: str) -> str:
    """One line for a person, instead of a traceback."""
    if isinstance(exc, ApiError) and exc.status == 401:
        return f"the API refused the key ({exc}): pass --api-key or set ATELIER_API_KEY"
    if isinstance(exc, ApiError):
        return str(exc)
    return f"cannot reach the API at {api} ({exc.__class__.__name__}: {exc}): is it running? (--api sets the URL)"


async def follow(
    api: str, key: str, submissions: list[Submission], out: Path, timeout_s: float, console: Console
) -> dict[str, list[str]]:
    """Wait for every submission with a progress bar, then download renditions under `out`."""
    saved: dict[str, list[str]] = {}
    accepted = [s for s in submissions if s.asset_id]
    async with AtelierClient(api, key) as client:
        with Progress(
            TextColumn("[bold]processing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("assets", total=len(accepted), last="")

            def advance(submission: Submission) -> None:
                progress.update(task, last=f"{submission.path.name}: {submission.stage}")
                if submission.stage in FINAL_STAGES:
                    progress.advance(task)

            await client.wait(accepted, timeout_s, advance)
        for submission in accepted:
            if submission.stage != "exported":
                continue
            try:
                paths = await client.download(submission, out / submission.path.stem)
            except (aiohttp.ClientError, TimeoutError) as exc:  # One asset's links fail: the others still save.
                console.print(
                    f"[red]{submission.path.name}: renditions not downloaded[/] ({exc.__class__.__name__}: {exc})"
                )
                continue
            saved[submission.asset_id] = [str(path) for path in paths]
    return saved


async def _submit(args: argparse.Namespace) -> int:
    console = Console()
    api, key = api_url(args.api), api_key(args.api_key, args.brand)
    submissions = []
    async with AtelierClient(api, key) as client:
        for path in image_files(args.paths):
            submission = Submission(path)
            try:
                submission.asset_id = await client.submit(path, args.brand, args.tier, args.style)
            except ApiError as exc:
                if exc.status == 401:
                    raise
                submission.error = str(exc)
            print(f"{path}: {submission.asset_id or submission.error}", flush=True)  # One line per file, for scripts.
            submissions.append(submission)
    if args.no_wait:
        return 0 if all(s.asset_id for s in submissions) else 1
    saved = await follow(api, key, submissions, Path(args.out), args.timeout, console)
    print_summary(console, submissions, saved)
    return 0 if all(s.stage == "exported" and s.asset_id in saved for s in submissions) else 1


async def _status(args: argparse.Namespace) -> int:
    async with AtelierClient(api_url(args.api), api_key(args.api_key, None)) as client:
        status = await client.status(args.asset_id)
    if status is None:
        print(f"no asset {args.asset_id}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2))
    return 0


def _parser(plugins: dict[str, EntryPoint]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="upload images (files or folders), wait for them, save renditions")
    submit.add_argument("paths", type=Path, nargs="+")
    submit.add_argument("--brand", required=True)
    submit.add_argument("--tier", choices=["preview", "production"], default="production")
    submit.add_argument("--style", default="", help="a style the brand allows (default: its rules decide)")
    submit.add_argument("--api", help="API URL (default: the local stack's)")
    submit.add_argument("--api-key", help="the brand's API key (default: ATELIER_API_KEY, or the local stack's)")
    submit.add_argument("--out", default="out")
    submit.add_argument("--no-wait", action="store_true", help="print the asset ids and return")
    submit.add_argument("--timeout", type=float, default=600.0)

    status = sub.add_parser("status", help="show an asset's status")
    status.add_argument("asset_id")
    status.add_argument("--api")
    status.add_argument("--api-key", help="an API key of the asset's brand (default: ATELIER_API_KEY)")

    for name, entry in sorted(plugins.items()):
        provider = entry.dist.name if entry.dist else "another package"
        sub.add_parser(name, help=f"see `atelier {name} --help` (from {provider})", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `atelier` entry point."""
    argv = sys.argv[1:] if argv is None else argv
    plugins = {entry.name: entry for entry in entry_points(group="atelier.commands")}
    if argv and argv[0] in plugins:
        command: Callable[[list[str]], int] = plugins[argv[0]].load()
        return command(argv[1:])
    if argv and argv[0] in _PROVIDERS:
        print(f"`atelier {argv[0]}` is not installed here: it comes with {_PROVIDERS[argv[0]]}", file=sys.stderr)
        return 2
    args = _parser(plugins).parse_args(argv)
    try:
        return asyncio.run(_submit(args) if args.command == "submit" else _status(args))
    except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
        print(f"atelier {args.command}: {_explain(exc, api_url(args.api))}", file=sys.stderr)
        return 1
