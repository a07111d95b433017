"""The per-asset summary printed after a run: tags, route and reason, model, stage times, outputs."""

from typing import Any

from rich.console import Console
from rich.table import Table

from atelier_client.client import Submission


def _tags(status: dict[str, Any]) -> str:
    tags = status.get("tags", {})
    if not tags:
        return ""
    palette = " ".join(colour["hex"] for colour in tags.get("palette", [])[:3])
    labels = ", ".join(label for label in tags.get("labels", []) if not label.startswith("hue-"))
    return f"{labels}\nbright {tags.get('brightness', 0):.2f} contrast {tags.get('contrast', 0):.2f}\n{palette}"


def _route(status: dict[str, Any]) -> str:
    route = status.get("route", {})
    if not route:
        return ""
    flags = " degraded" if route.get("degraded") else ""
    pool = f"{route.get('style')} x{route.get('strength', 1):.2f} -> {route.get('model_tier')}{flags}"
    return f"{pool}\n{route.get('reason', '')}"


def _model(status: dict[str, Any]) -> str:
    stylized = status.get("stylized", {})
    if not stylized:
        return ""
    timings = stylized.get("timings", {})
    if stylized.get("cache_hit"):
        return f"{stylized.get('model')}\ncache hit"
    return (
        f"{stylized.get('model')}\n{stylized.get('backend')} batch {stylized.get('batch_size')}\n"
        f"queue {timings.get('queue_wait_ms', 0):.0f} decode {timings.get('decode_ms', 0):.0f} "
        f"infer {timings.get('inference_ms', 0):.0f} encode {timings.get('encode_ms', 0):.0f} ms"
    )


def _stages(status: dict[str, Any]) -> str:
    return "\n".join(f"{name} {value:.0f}" for name, value in status.get("stage_ms", {}).items())


def _outputs(submission: Submission, saved: dict[str, list[str]]) -> str:
    if submission.error:
        return submission.error
    failure = submission.status.get("failure")
    if failure and submission.stage == "failed":
        return f"{failure['service']}: {failure['error_type']}: {failure['message']}"
    paths = saved.get(submission.asset_id)
    if paths:
        return "\n".join(paths)
    return "\n".join(f"{r['profile']}: {r['object']['key']}" for r in submission.status.get("renditions", []))


def print_summary(console: Console, submissions: list[Submission], saved: dict[str, list[str]]) -> None:
    """One row per asset."""
    table = Table(title="Atelier run", show_lines=True, expand=True)
    for column in ("asset", "stage", "tags", "route and reason", "model", "stage ms", "outputs"):
        table.add_column(column, overflow="fold")
    for submission in submissions:
        status = submission.status
        colour = {"exported": "green", "failed": "red", "rejected": "red"}.get(submission.stage, "yellow")
        table.add_row(
            f"{submission.path.name}\n{submission.asset_id[:8]}\n{status.get('source', '')}",
            f"[{colour}]{submission.stage}[/{colour}]",
            _tags(status),
            _route(status),
            _model(status),
            _stages(status),
            _outputs(submission, saved),
        )
    console.print(table)
