"""Service tests run services in-process: give them a real tracer provider (exporting nowhere)."""

import os
from collections.abc import Iterator

import pytest

from atelier_shared import configure_tracing


@pytest.fixture(scope="session", autouse=True)
def tracing() -> Iterator[None]:
    previous = os.environ.get("OTEL_TRACES_EXPORTER")
    os.environ["OTEL_TRACES_EXPORTER"] = "none"
    configure_tracing("service-tests")
    yield
    if previous is None:
        os.environ.pop("OTEL_TRACES_EXPORTER", None)
    else:
        os.environ["OTEL_TRACES_EXPORTER"] = previous
