"""A minimal OTLP/HTTP trace receiver: collects the spans the services export.

The local stack points OTEL_EXPORTER_OTLP_ENDPOINT at it, keeps the spans in memory for tests and
the run summary, and appends them as JSON lines to a file. It answers `GET /api/traces/{id}` in the
form Jaeger's query service does, so the studio's trace waterfall reads it locally as it reads
Jaeger in production. Production uses a real collector.
"""

import gzip
import json
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status


@dataclass(frozen=True)
class CollectedSpan:
    """One exported span, flattened."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    # OpenTelemetry's status: "", "OK" or "ERROR".
    status: str = ""

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


_STATUS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}


def _flatten(request: ExportTraceServiceRequest) -> list[CollectedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {attr.key: _value(attr.value) for attr in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    CollectedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        service=service,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={attr.key: _value(attr.value) for attr in span.attributes},
                        status=_STATUS.get(span.status.code, ""),
                    )
                )
    return spans


def jaeger_trace(spans: list[CollectedSpan]) -> dict[str, Any]:
    """Spans of one trace as Jaeger's query service answers `GET /api/traces/{id}` (times in microseconds)."""
    processes = {service: f"p{number}" for number, service in enumerate(sorted({s.service for s in spans}), 1)}
    return {
        "data": [
            {
                "traceID": spans[0].trace_id,
                "spans": [
                    {
                        "traceID": span.trace_id,
                        "spanID": span.span_id,
                        "operationName": span.name,
                        "references": [{"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id}]
                        if span.parent_span_id
                        else [],
                        "startTime": span.start_ns // 1000,
                        "duration": (span.end_ns - span.start_ns) // 1000,
                        "tags": [{"key": "otel.status_code", "type": "string", "value": span.status}]
                        if span.status
                        else [],
                        "processID": processes[span.service],
                    }
                    for span in spans
                ],
                "processes": {pid: {"serviceName": service, "tags": []} for service, pid in processes.items()},
            }
        ],
        "errors": None,
    }


class TraceSink:
    """Receives OTLP/HTTP protobuf exports on /v1/traces."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", jsonl: Path | None = None) -> None:
        self._spans: list[CollectedSpan] = []
        self._lock = threading.Lock()
        self._jsonl = jsonl
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                sink._add(_flatten(ExportTraceServiceRequest.FromString(body)))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:  # noqa: N802
                prefix = "/api/traces/"
                spans = sink.spans(self.path.removeprefix(prefix)) if self.path.startswith(prefix) else []
                if spans:
                    self._reply(200, jaeger_trace(spans))
                else:
                    self._reply(404, {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]})

            def _reply(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.endpoint = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="trace-sink", daemon=True)

    def start(self) -> None:
        """Start receiving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving."""
        self._server.shutdown()
        self._server.server_close()

    def _add(self, spans: list[CollectedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)
            if self._jsonl is not None:
                with self._jsonl.open("a") as out:
                    for span in spans:
                        out.write(json.dumps(asdict(span)) + "\n")

    def spans(self, trace_id: str | None = None) -> list[CollectedSpan]:
        """Spans received so far, optionally of one trace."""
        with self._lock:
            return [span for span in self._spans if trace_id is None or span.trace_id == trace_id]
