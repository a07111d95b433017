"""What `atelier dead-letters replay` can replay."""

from atelier_shared import events
from atelier_shared.dead_letters import DeadLetter


def test_a_letter_that_kept_its_record_only_by_size_and_hash_is_not_replayable() -> None:
    kept = events.DeadLettered(original_value=b"record", original_size=6)
    omitted = events.DeadLettered(original_size=900_000, original_sha256="ab" * 32, original_omitted=True)
    empty_value_long_key = events.DeadLettered(original_size=0, original_omitted=True)
    older = events.DeadLettered(original_value=b"record")  # Written before letters said what they omit.
    omitted_before_the_flag = events.DeadLettered(original_size=900_000, original_sha256="ab" * 32)
    assert DeadLetter(0, 1, kept).replayable and DeadLetter(0, 3, older).replayable
    assert not DeadLetter(0, 2, omitted).replayable and not DeadLetter(0, 4, empty_value_long_key).replayable
    assert not DeadLetter(0, 5, omitted_before_the_flag).replayable


def test_a_letter_keeps_a_traceparent_only_in_w3c_form() -> None:
    """Regression: the letter copied the failed record's traceparent header as it came, so 400,000 bytes
    of junk from another system made a letter over Kafka's record limit, which stopped the consumer."""
    from atelier_shared.tracing import traceparent_of

    valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert traceparent_of([("traceparent", valid.encode())]) == valid
    assert traceparent_of([("traceparent", b"\xff" * 400_000)]) == ""


def test_a_header_without_a_value_is_no_trace_context() -> None:
    """Regression: a traceparent header with a null value (None from aiokafka) raised AttributeError in the
    tracing layer, which runs on every record."""
    from atelier_shared.tracing import context_from, traceparent_of

    assert traceparent_of([("traceparent", None)]) == ""  # type: ignore[list-item]
    context_from([("tracestate", None), ("baggage", None)])  # type: ignore[list-item]
