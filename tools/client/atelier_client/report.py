"""The summary printed after a run: a table with a line per asset, then each asset's details (tags,
why it was routed where it was, stage times, outputs), which wrap at any terminal width."""

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from atelier_client.client import Submission

_COLOURS = {"exported": "green", "failed": "red", "rejected": "red"}


def _route(status: dict[str, Any]) -> str:
    route = status.get("route", {})
    if not route:
        return ""
    degraded = " (degraded)" if route.get("degraded") else ""
    return f"{route.get('style')} x{route.get('strength', 1):.2f} → {route.get('model_tier')}{degraded}"


def _model(status: dict[str, Any]) -> str:
    stylized = status.get("stylized", {})
    return str(stylized.get("model", ""))


def _engine(status: dict[str, Any]) -> str:
    stylized = status.get("stylized", {})
    if not stylized:
        return ""
    if stylized.get("cache_hit"):
        return "cache hit (rendered before)"
    return f"{stylized.get('backend')}, batch of {stylized.get('batch_size')}"


def _total_ms(status: dict[str, Any]) -> str:
    stages = status.get("stage_ms", {})
    return f"{stages['total']:.0f}" if "total" in stages else ""


def _outputs(submission: Submission, saved: dict[str, list[str]]) -> list[str]:
    """Where the renditions are (saved files, else their object keys), or why there are none."""
    if submission.error:
        return [submission.error]
    failure = submission.status.get("failure")
    if failure and submission.stage == "failed":
        return [f"{failure['service']}: {failure['error_type']}: {failure['message']}"]
    paths = saved.get(submission.asset_id)
    if paths:
        return paths
    return [f"{r['profile']}: {r['object']['key']}" for r in submission.status.get("renditions", [])]


def _tags(status: dict[str, Any]) -> str:
    tags = status.get("tags", {})
    if not tags:
        return ""
    labels = ", ".join(label for label in tags.get("labels", []) if not label.startswith("hue-"))
    palette = " ".join(colour["hex"] for colour in tags.get("palette", [])[:3])
    return f"{labels}; brightness {tags.get('brightness', 0):.2f}, contrast {tags.get('contrast', 0):.2f}; {palette}"


def _times(status: dict[str, Any]) -> str:
    stages = ", ".join(f"{name} {value:.0f}" for name, value in status.get("stage_ms", {}).items() if name != "total")
    stylized = status.get("stylized", {})
    timings = stylized.get("timings", {})
    if not stages or not timings or stylized.get("cache_hit"):
        return f"{stages} ms" if stages else ""
    inside = ", ".join(
        f"{name} {timings.get(key, 0):.0f}"
        for name, key in (("queue", "queue_wait_ms"), ("decode", "decode_ms"), ("infer", "inference_ms"))
    )
    return f"{stages} ms (stylize: {inside}, encode {timings.get('encode_ms', 0):.0f})"


def fields(rows: dict[str, str], label_style: str = "dim") -> Table:
    """Labelled values, each wrapping under its own column; empty ones left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=label_style, no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows.items():
        if value:
            grid.add_row(label, value)
    return grid


def _details(submission: Submission, saved: dict[str, list[str]]) -> Table:
    status = submission.status
    return fields({
        "tags": _tags(status),
        "why": status.get("route", {}).get("reason", ""),
        "engine": _engine(status),
        "times": _times(status),
        "outputs": "\n".join(_outputs(submission, saved)),
    })  # fmt: skip


def print_summary(console: Console, submissions: list[Submission], saved: dict[str, list[str]]) -> None:
    """A line per asset, then the details of each."""
    table = Table(title="Atelier run")
    table.add_column("asset", overflow="fold")
    table.add_column("stage", no_wrap=True)
    table.add_column("route", overflow="fold")
    table.add_column("model", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    stages = [Text(submission.stage, _COLOURS.get(submission.stage, "yellow")) for submission in submissions]
    for submission, stage in zip(submissions, stages, strict=True):
        status = submission.status
        table.add_row(submission.path.name, stage, _route(status), _model(status), _total_ms(status))
    console.print(table)
    for submission, stage in zip(submissions, stages, strict=True):
        title = Text.assemble(
            (submission.path.name, "bold"), f"  {submission.asset_id}  {submission.status.get('source', '')}  ", stage
        )
        console.print(title, _details(submission, saved), "", sep="\n")
