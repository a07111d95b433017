"""Back-off shared by everything that retries (tenacity), cut short when the service shuts down."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiokafka.errors import KafkaError, KafkaTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_exponential_jitter

from atelier_shared.logging import get_logger

log = get_logger(__name__)


class Abandoned(Exception):
    """Shutting down while work still waits for a retry: leave it uncommitted for redelivery."""


class Shutdown:
    """A service's stop signal, and sleeps that end early (raising Abandoned) when it is given."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def on_begin(self, listener: Callable[[], None]) -> None:
        """Call `listener` when shutdown begins (a consumer loop ends its handlers' holds); at once if it has."""
        self._listeners.append(listener)
        if self.begun:
            listener()

    def begin(self) -> None:
        """Signal every loop and back-off of the service to stop."""
        self._event.set()
        for listener in self._listeners:
            listener()

    @property
    def begun(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once shutdown has begun."""
        await self._event.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless shutdown begins first: then raise Abandoned."""
        await _sleep_unless(self._event, seconds)


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return
    raise Abandoned()


# What ends the holds of the record handlers running: the consumer loop sets it for each batch.
_interrupt: ContextVar[asyncio.Event | None] = ContextVar("atelier_interrupt", default=None)


@contextmanager
def interruptible(interrupt: asyncio.Event) -> Iterator[None]:
    """Holds inside end (raising Abandoned) once `interrupt` is set."""
    token = _interrupt.set(interrupt)
    try:
        yield
    finally:
        _interrupt.reset(token)


async def hold(seconds: float) -> None:
    """Wait inside a record handler (for a record not due yet), unless the service stops or a
    rebalance begins first: then raise Abandoned, leaving the record uncommitted for the owner of its
    partition to handle again. A rebalance never waits for a hold."""
    interrupt = _interrupt.get()
    if interrupt is None:
        raise RuntimeError("hold() outside a record handler: nothing would end it for a rebalance")
    await _sleep_unless(interrupt, seconds)


def kafka_retriable(error: BaseException) -> bool:
    """Whether a Kafka error may clear on its own: aiokafka's `retriable` flag, plus client-side timeouts.

    aiokafka flags its own KafkaTimeoutError (no answer within request_timeout_ms, as during a broker
    outage) as not retriable, though waiting is exactly what helps; everything else it flags so
    (too large, not authorised, unsupported, invalid) is a configuration or data problem.
    """
    return isinstance(error, KafkaError) and (error.retriable or isinstance(error, KafkaTimeoutError))


def retrying(
    should_retry: Callable[[BaseException], bool],
    sleep: Callable[[float], Awaitable[None]] | None = None,
    initial_s: float = 0.2,
    max_s: float = 5.0,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> AsyncRetrying:
    """Retry while `should_retry(error)` holds, forever, with capped exponential back-off and jitter.

    Pass `sleep=shutdown.sleep` to give up (Abandoned) when the service stops; `on_retry(error,
    attempt)` runs before each back-off.
    """

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.attempt_number)

    return AsyncRetrying(
        retry=retry_if_exception(should_retry),
        wait=wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
        stop=stop_never,
        reraise=True,
        before_sleep=before_sleep,
        sleep=sleep or asyncio.sleep,
    )


def warn(what: str, **fields: object) -> Callable[[BaseException, int], None]:
    """An `on_retry` that logs what failed and that it will be retried."""
    return lambda error, attempt: log.warning(f"{what} failed, retrying", error=repr(error), attempt=attempt, **fields)
