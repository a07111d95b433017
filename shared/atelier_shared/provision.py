"""Create a deployment's topics and buckets on real Kafka and MinIO: a deploy step, idempotent.

`python -m atelier_shared.provision` (or `atelier provision`). The status view's changelog is
compacted; the dead-letter topic keeps records for 30 days so they can be inspected and replayed; the
stylized results expire after ATELIER_STYLIZED_RETENTION_DAYS (30).
Against the embedded broker use LocalInfra.provision (it does not support CreateTopics).
"""

import argparse
import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from atelier_shared import topics
from atelier_shared.logging import configure_logging, get_logger
from atelier_shared.settings import AtelierSettings, load_settings
from atelier_shared.storage import ObjectStore

log = get_logger(__name__)

_THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)


def topic_configs(settings: AtelierSettings) -> dict[str, dict[str, str]]:
    """Per-topic configuration that differs from the broker's defaults."""
    names = settings.topics
    return {
        names.status_changelog: {"cleanup.policy": "compact"},
        names.name(topics.DEAD_LETTER): {"retention.ms": _THIRTY_DAYS_MS},
    }


async def create_topics(settings: AtelierSettings, replication: int) -> list[str]:
    """Create missing topics; the names created."""
    configs = topic_configs(settings)
    admin = AIOKafkaAdminClient(**settings.kafka_options(), client_id="atelier-provision")
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        for name in settings.topics.provisioned_names():
            if name in existing:
                continue
            try:
                await admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, replication, topic_configs=configs.get(name, {}))]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


async def create_buckets(settings: AtelierSettings) -> None:
    """Create missing buckets, and set the stylized results' expiry."""
    store = ObjectStore(settings)
    await store.ensure_buckets(settings.buckets())
    await store.set_expiry(settings.bucket_stylized, settings.stylized_retention_days)


async def provision(settings: AtelierSettings, replication: int) -> None:
    """Topics, then buckets, retrying while Kafka or the store is still starting."""
    for attempt in range(60):
        try:
            created = await create_topics(settings, replication)
            await create_buckets(settings)
            log.info("provisioned", topics_created=created, buckets=settings.buckets())
            return
        except (KafkaError, OSError) as exc:
            log.warning("not reachable yet, retrying", error=repr(exc), attempt=attempt)
            await asyncio.sleep(2)
    raise SystemExit("could not provision: Kafka or the object store stayed unreachable")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="atelier provision", description=__doc__)
    parser.add_argument("--replication", type=int, default=1, help="replication factor of created topics")
    args = parser.parse_args(argv)
    settings = load_settings(AtelierSettings)
    configure_logging("provision", settings.log_level)
    asyncio.run(provision(settings, args.replication))


if __name__ == "__main__":
    main()
