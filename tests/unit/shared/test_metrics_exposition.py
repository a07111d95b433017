"""/metrics in both expositions: Prometheus's text format by default, OpenMetrics (with exemplars) when
the scraper asks, as Prometheus does; the artist's wait carries the asset's trace id as its exemplar."""

import aiohttp
from opentelemetry.sdk.trace import TracerProvider

from atelier_exporter.exporter import ARTIST_WAIT_SECONDS
from atelier_shared.runtime.http import HttpServer
from atelier_shared.tracing import exemplar

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"  # Prometheus's


async def test_openmetrics_carries_the_trace_as_exemplar_and_text_stays_the_default() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process atelier.stylized") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        ARTIST_WAIT_SECONDS.labels("exposition-test", "preview", "normal").observe(1.25, exemplar())
    assert exemplar() is None  # Outside a trace: no exemplar.

    server = HttpServer("127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": OPENMETRICS}) as response:
                assert response.headers["Content-Type"].startswith("application/openmetrics-text")
                openmetrics = await response.text()
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
    finally:
        await server.stop()
    bucket = 'atelier_artist_wait_seconds_bucket{brand="exposition-test",kind="normal",le="2.0",tier="preview"}'
    line = next(line for line in openmetrics.splitlines() if line.startswith(bucket))
    assert f'# {{trace_id="{trace_id}"}} 1.25' in line
    assert bucket in text and "trace_id" not in text
