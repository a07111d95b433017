"""`atelier dead-letters list|replay`: read the dead-letter topic, and re-inject chosen records after a fix.

A dead letter keeps the original record (topic, key, value, traceparent). Replaying produces it to
its original topic again, so the service that gave up handles it anew; outputs have deterministic
keys (renditions, stylized results), so a replay never duplicates an object. A dead letter is named
by its place in the dead-letter topic, `<partition>:<offset>`. Settings come from ATELIER_*
variables (or the local stack's endpoints file); `python -m atelier_shared.dead_letters` in any image.
"""

import argparse
import asyncio
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from atelier_shared import events, topics
from atelier_shared.runtime.producer import EventProducer
from atelier_shared.settings import AtelierSettings


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter record and where it sits."""

    partition: int
    offset: int
    event: events.DeadLettered

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def replayable(self) -> bool:
        """Whether it holds its record: one over the letter's limits is kept only by size and hash."""
        # Letters of the first bounded version said so only by an empty value of a non-zero size.
        return not self.event.original_omitted and len(self.event.original_value) >= self.event.original_size


async def read_all(settings: AtelierSettings, timeout_s: float = 60.0) -> list[DeadLetter]:
    """Every record of the dead-letter topic, from the beginning to its current end (TimeoutError when
    the broker stops answering before it is read)."""
    topic = settings.topics.name(topics.DEAD_LETTER)
    # Without a group id, subscribing assigns every partition and commits nothing.
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_options(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        async with asyncio.timeout(timeout_s):
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                for part, records in (await consumer.getmany(timeout_ms=500)).items():
                    letters.extend(
                        DeadLetter(part.partition, r.offset, events.DeadLettered.FromString(r.value or b""))
                        for r in records
                    )
    finally:
        await consumer.stop()
    return sorted(letters, key=lambda letter: letter.event.failed_at.ToNanoseconds())


async def replay(settings: AtelierSettings, letters: list[DeadLetter]) -> None:
    """Produce each dead letter's original record to its original topic (with its trace context)."""
    producer = EventProducer(settings.kafka_options(), "atelier-dead-letters", settings.topics)
    await producer.start()
    try:
        for letter in letters:
            event = letter.event
            headers = [("traceparent", event.traceparent.encode())] if event.traceparent else []
            await producer.send_raw(event.original_topic, event.original_key or None, event.original_value, headers)
    finally:
        await producer.stop()


def _chosen(letters: list[DeadLetter], args: argparse.Namespace) -> list[DeadLetter]:
    return [
        letter
        for letter in letters
        if (args.all or letter.id in args.ids)
        and args.service in (None, letter.event.service)
        and args.error_type in (None, letter.event.error_type)
    ]


def _line(letter: DeadLetter) -> str:
    event = letter.event
    when = event.failed_at.ToDatetime().isoformat(timespec="seconds")
    message = event.error_message.replace("\n", " ")[:100]
    where = f"{letter.id:>8}  {when}  {event.asset_id:36}  {event.brand:12}  {event.service:9}"
    return f"{where}  {event.error_type}: {message}"


async def _run(args: argparse.Namespace) -> int:
    settings = AtelierSettings()  # type: ignore[call-arg]  # From ATELIER_* variables.
    letters = await read_all(settings)
    if args.action == "list":
        for letter in letters:
            print(_line(letter))
        print(f"{len(letters)} dead letters", file=sys.stderr)
        return 0
    chosen = _chosen(letters, args)
    missing = set(args.ids) - {letter.id for letter in chosen}
    if missing or not chosen:
        print(f"nothing replayed: no dead letter {sorted(missing) or 'matches'}", file=sys.stderr)
        return 1
    kept = [letter for letter in chosen if letter.replayable]
    for letter in chosen:
        if not letter.replayable:
            size, digest = letter.event.original_size, letter.event.original_sha256
            print(
                f"not replayed {letter.id}: the letter holds only its record's size ({size} bytes) and sha256 "
                f"({digest}); publish the original again",
                file=sys.stderr,
            )
    await replay(settings, kept)
    for letter in kept:
        print(f"replayed {letter.id} ({letter.event.asset_id}) to {letter.event.original_topic}")
    return 0 if len(kept) == len(chosen) else 1


def command(argv: list[str]) -> int:
    """`atelier dead-letters`: list the dead letters, or replay some."""
    parser = argparse.ArgumentParser(prog="atelier dead-letters", description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every dead letter: id, when, asset, brand, service, error")
    replaying = actions.add_parser("replay", help="re-inject dead letters into their original topics")
    replaying.add_argument("ids", nargs="*", help="dead letters by id (<partition>:<offset>)")
    replaying.add_argument("--all", action="store_true", help="every dead letter (narrowed by the filters)")
    replaying.add_argument("--service", help="only those this service gave up on")
    replaying.add_argument("--error-type", help="only those with this error type")
    args = parser.parse_args(argv)
    if args.action == "replay" and not args.ids and not args.all:
        parser.error("name dead letters by id, or give --all")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(command(sys.argv[1:]))
