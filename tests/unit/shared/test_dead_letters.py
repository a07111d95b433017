"""What `atelier dead-letters replay` can replay."""

from atelier_shared import events
from atelier_shared.dead_letters import DeadLetter


def test_a_letter_that_kept_its_record_only_by_size_and_hash_is_not_replayable() -> None:
    kept = events.DeadLettered(original_value=b"record", original_size=6)
    omitted = events.DeadLettered(original_value=b"", original_size=900_000, original_sha256="ab" * 32)
    older = events.DeadLettered(original_value=b"record")  # Written before letters had a size.
    assert DeadLetter(0, 1, kept).replayable and DeadLetter(0, 3, older).replayable
    assert not DeadLetter(0, 2, omitted).replayable
