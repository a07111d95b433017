"""OpenTelemetry tracing: one trace per asset, the W3C traceparent carried in Kafka headers.

Exporters follow the standard variables: OTEL_TRACES_EXPORTER (otlp, console or none; default
otlp) and OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for OTLP over HTTP.
HTTP requests are traced by OpenTelemetry's aiohttp server instrumentation, which leaves out the
URLs in OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS (default: health, readiness, metrics, the studio's
page files, and event streams, which stay open for hours and would each be one endless span).
"""

import os
from collections.abc import Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]

_provider: TracerProvider | None = None


def configure_tracing(service: str, **attributes: str) -> None:
    """Install the tracer provider for this process; call once at start."""
    global _provider
    resource = Resource.create({"service.name": service, **attributes})
    provider = TracerProvider(resource=resource)
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=500))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter != "none":
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r}: use otlp, console or none")
    trace.set_tracer_provider(provider)
    _provider = provider
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", "healthz,readyz,metrics,/studio,/events")
    instrumentor = AioHttpServerInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def shutdown_tracing() -> None:
    """Flush and stop span export."""
    if _provider is not None:
        _provider.shutdown()


def tracer() -> trace.Tracer:
    """Atelier's tracer."""
    return trace.get_tracer("atelier")


class _HeaderSetter(Setter[list[tuple[str, bytes]]]):
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode()))


class _HeaderGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        # A header may have a null value (None from aiokafka): no value, not a crash of the consumer.
        values = [value.decode(errors="replace") for name, value in carrier if name == key and value is not None]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [name for name, _ in carrier]


def headers_for(context: Context | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers that carry the trace context (traceparent, tracestate, baggage)."""
    headers: list[tuple[str, bytes]] = []
    propagate.inject(headers, context=context, setter=_HeaderSetter())
    return headers


def context_from(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    """The trace context carried in Kafka headers; an empty context when there is none."""
    return propagate.extract(list(headers or ()), getter=_HeaderGetter())


def trace_id_of(headers: Iterable[tuple[str, bytes]] | None) -> str:
    """The hex trace id that Kafka headers carry, or an empty string."""
    context = trace.get_current_span(context_from(headers)).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def traceparent_of(headers: Iterable[tuple[str, bytes]] | None) -> str:
    """The W3C traceparent the headers carry, as the propagator reads it, or an empty string: bounded,
    whatever another system put in the header (a dead letter keeps it)."""
    context = trace.get_current_span(context_from(headers)).get_span_context()
    if not context.is_valid:
        return ""
    trace_id, span_id = trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
    return f"00-{trace_id}-{span_id}-{int(context.trace_flags):02x}"


def exemplar() -> dict[str, str] | None:
    """The current trace as a Prometheus exemplar ({"trace_id": ...}), or None outside a sampled trace.

    Exemplars are served in the OpenMetrics exposition (/metrics with `Accept:
    application/openmetrics-text`, as Prometheus asks when its exemplar storage is on)."""
    context = trace.get_current_span().get_span_context()
    recorded = context.is_valid and context.trace_flags.sampled  # A trace Jaeger would have.
    return {"trace_id": trace.format_trace_id(context.trace_id)} if recorded else None
