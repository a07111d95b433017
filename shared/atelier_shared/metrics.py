"""Prometheus metrics every service shares."""

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

MESSAGES = Counter(
    "atelier_messages_total",
    "Kafka records handled, by outcome (ok, dead_lettered).",
    ["service", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "atelier_handle_seconds",
    "Time to handle one batch of records, produce its outputs and commit.",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_WAIT_SECONDS = Histogram(
    "atelier_queue_wait_seconds",
    "Time from a record's produce to the start of its handling.",
    ["service", "topic"],
    buckets=_LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "atelier_batch_size",
    "Records per handled batch.",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
DEAD_LETTERS = Counter(
    "atelier_dead_letters_total", "Records sent to the dead-letter topic.", ["service", "error_type"]
)
RETRIES = Counter("atelier_retries_total", "Handling attempts retried after a failure.", ["service", "error_type"])
BUFFERED = Gauge("atelier_buffered_records", "Records fetched and not yet handled.", ["service", "topic"])
HANDLING = Gauge("atelier_handling_records", "Records whose handling has begun and not ended.", ["service", "topic"])
PAUSED_PARTITIONS = Gauge("atelier_paused_partitions", "Partitions paused for backpressure.", ["service"])
STARTED = Gauge(
    "atelier_service_started",
    "1 once the service's start is done; 0 while it waits (for Kafka, a stylizer for its models).",
    ["service"],
)
STAGE_SECONDS = Histogram(
    "atelier_stage_seconds",
    "Per-stage latency (tag, route, decode, inference, encode, export, ...).",
    ["service", "stage"],
    buckets=_LATENCY_BUCKETS,
)
