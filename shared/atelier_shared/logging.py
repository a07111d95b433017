"""structlog JSON logs that carry the service, the trace id and the asset id."""

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger


def _add_trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def configure_logging(service: str, level: str = "info") -> None:
    """JSON lines on stderr; bind asset ids with `bind_asset`, trace ids are added from the span."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `name` (the module) becomes the `module` field."""
    return structlog.get_logger(module=name) if name else structlog.get_logger()


def bind_asset(asset_id: str) -> Any:
    """Bind an asset id to every log line of the current task; returns tokens for `unbind`."""
    return structlog.contextvars.bind_contextvars(asset_id=asset_id)


def unbind(tokens: Any) -> None:
    """Undo `bind_asset`."""
    structlog.contextvars.reset_contextvars(**tokens)
