"""The studio's trace waterfall reads Jaeger's query API; the local trace sink answers in the same form."""

from atelier_devtools.local.traces import CollectedSpan, jaeger_trace
from atelier_uploader.studio import waterfall

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(
    span_id: str, parent: str, service: str, name: str, start_ms: int, end_ms: int, status: str = ""
) -> CollectedSpan:
    ms = 1_000_000
    return CollectedSpan(
        TRACE,
        span_id,
        parent,
        name,
        service,
        1_700_000_000_000 * ms + start_ms * ms,
        1_700_000_000_000 * ms + end_ms * ms,
        {"atelier.asset_id": "a"},
        status,
    )


def test_the_sinks_answer_becomes_rows_in_start_order_with_services_and_failures() -> None:
    spans = [
        span("b2", "a1", "tagger", "process atelier.uploaded", 40, 90),
        span("a1", "", "uploader", "POST /v1/assets", 0, 30),
        span("c3", "b2", "stylizer", "inference", 100, 160, status="ERROR"),
    ]
    rows = waterfall(jaeger_trace(spans), TRACE)
    assert [(row.service, row.name, row.start_ms, row.duration_ms, row.parent_id, row.error) for row in rows] == [
        ("uploader", "POST /v1/assets", 0.0, 30.0, "", False),
        ("tagger", "process atelier.uploaded", 40.0, 50.0, "a1", False),
        ("stylizer", "inference", 100.0, 60.0, "b2", True),
    ]


def test_jaegers_own_answer_is_read_and_span_tags_stay_behind() -> None:
    """As Jaeger's query service answers GET /api/traces/{id} (its UI's API), abbreviated."""
    document = {
        "data": [
            {
                "traceID": TRACE,
                "spans": [
                    {
                        "traceID": TRACE,
                        "spanID": "00f067aa0ba902b7",
                        "operationName": "s3 PutObject",
                        "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "53995c3f42cd8ad8"}],
                        "startTime": 1700000000123456,
                        "duration": 8200,
                        "tags": [{"key": "error", "type": "bool", "value": True}, {"key": "secret", "value": "x"}],
                        "logs": [],
                        "processID": "p1",
                        "warnings": None,
                    }
                ],
                "processes": {"p1": {"serviceName": "exporter", "tags": []}},
                "warnings": None,
            }
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    (row,) = waterfall(document, TRACE)
    assert row.model_dump() == {
        "span_id": "00f067aa0ba902b7",
        "parent_id": "53995c3f42cd8ad8",
        "service": "exporter",
        "name": "s3 PutObject",
        "start_ms": 0.0,
        "duration_ms": 8.2,
        "error": True,
    }
    assert waterfall({"data": None, "errors": [{"code": 404, "msg": "trace not found"}]}, TRACE) == []
