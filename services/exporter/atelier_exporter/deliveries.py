"""Durable webhooks: every exported event of a brand with a webhook is delivered, retried for hours.

The first attempt follows the `exported` event in its own consumer group, so a slow or dead
receiver never delays an export. A failed attempt writes the delivery to a retry tier topic with
its due time (tier 1 after the first failure, tier 2 after the second, the last tier after that),
and every attempt's outcome to the `webhooks` topic, which the status view folds. A delivery still
failing `webhook_give_up_s` after its first attempt is dead-lettered: `atelier dead-letters replay`
sends it to its tier again once the receiver is fixed, for one more attempt (dead-lettered again if
that fails too). Offsets are committed after the outcome is published, so a crash repeats an attempt
at worst: receivers deduplicate on X-Atelier-Delivery.
"""

import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from atelier_exporter import webhook
from atelier_shared import BrandBook, PermanentError, events, get_logger, hold, topics, tracer
from atelier_shared.runtime.subscription import Choice

log = get_logger(__name__)


class WebhookUndeliverable(PermanentError):
    """A receiver that kept failing past the give-up age."""

    code = "webhook_undeliverable"


def _published_topic(event: Message) -> topics.TopicSpec[Any]:
    if isinstance(event, events.WebhookRetryScheduled):
        return topics.WEBHOOK_RETRIES[event.retry_tier]
    return topics.WEBHOOKS


# What the delivery handlers publish: outcomes, and tasks to their retry tier.
PUBLISHES: Choice[Any] = Choice((topics.WEBHOOKS, *topics.WEBHOOK_RETRIES), _published_topic)


def _age_s(stamp: Timestamp) -> float:
    return time.time() - events.timestamp_ms(stamp) / 1000


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


class WebhookDeliveries:
    """Owns the webhook HTTP session; handles first attempts (from `exported`) and retries."""

    def __init__(
        self,
        brands: BrandBook,
        secrets: dict[str, bytes],
        retry_delays_s: Sequence[float],
        give_up_s: float,
        timeout_s: float,
    ) -> None:
        if len(retry_delays_s) != len(topics.WEBHOOK_RETRIES):
            raise ValueError(f"one retry delay per tier topic ({len(topics.WEBHOOK_RETRIES)}), got {retry_delays_s}")
        self._brands = brands
        self._secrets = secrets
        self._delays = tuple(retry_delays_s)
        self._give_up_s = give_up_s
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def first(self, exported: events.AssetExported) -> list[Message] | None:
        """The first attempt for an exported event, if its brand has a webhook."""
        if self._brands.get(exported.asset.brand).webhook is None:
            return None
        if (
            _age_s(exported.asset.timeline.exported_at) > self._give_up_s
        ):  # Older than any delivery is owed for (a new group reads from the start).
            return None
        task = events.WebhookRetryScheduled(asset_id=exported.asset.asset_id, exported=exported)
        task.first_attempt_at.CopyFrom(events.now_timestamp())
        return await self._attempt(task)

    async def retry(self, task: events.WebhookRetryScheduled) -> list[Message]:
        """A retry, once it is due (records of one tier fall due in order: waiting holds back none due).
        A stop or a rebalance during the wait abandons the record uncommitted: the partition's owner
        waits for it again."""
        await hold(max(0.0, events.timestamp_ms(task.due_at) / 1000 - time.time()))
        owed = events.WebhookRetryScheduled()
        owed.CopyFrom(task)  # The consumed event stays as it was (the runtime may retry the handler).
        return await self._attempt(owed)

    async def _attempt(self, task: events.WebhookRetryScheduled) -> list[Message]:
        if self._session is None:
            raise RuntimeError("webhook deliveries used before start(): the HTTP session is not open")
        exported, brand = task.exported, task.exported.asset.brand
        hook = self._brands.get(brand).webhook
        if hook is None:  # The brand's webhook was removed since: nothing is owed any more.
            return []
        kind = "asset.upgraded" if exported.route.rerender else "asset.exported"
        delivery_id = webhook.delivery_id(exported)
        with tracer().start_as_current_span("webhook", attributes={"atelier.attempt": task.attempts + 1}):
            result = await webhook.attempt(
                self._session,
                str(hook.url),
                self._secrets[brand],
                kind,
                delivery_id,
                MessageToDict(exported, preserving_proto_field_name=True),
                self._timeout_s,
            )
        task.attempts += 1
        result.attempts = task.attempts
        report = events.WebhookReported(
            asset_id=task.asset_id, brand=brand, delivery_id=delivery_id, delivery=result, delivered=not result.error
        )
        report.attempted_at.CopyFrom(events.now_timestamp())
        if not result.error:
            return [report]
        age_s = _age_s(task.first_attempt_at)
        if age_s >= self._give_up_s:
            raise WebhookUndeliverable(
                f"webhook of brand {brand!r} failed {task.attempts} times over {age_s:.0f} s, last: {result.error}",
                asset_id=task.asset_id,
                brand=brand,
            )
        task.retry_tier = min(task.attempts - 1, len(self._delays) - 1)
        task.due_at.CopyFrom(_timestamp(time.time() + self._delays[task.retry_tier]))
        report.next_attempt_at.CopyFrom(task.due_at)
        log.warning("webhook attempt failed", brand=brand, error=result.error, attempts=task.attempts)
        return [report, task]
