"""Restarts the local stack's services when they die: services are crash-only, so something must.

A service that exits on its own (a crash, or a kill -9 from outside) is started again after a
back-off that doubles with each crash in the window (1, 2, 4, 8, 16 s); a crash beyond
`give_up_after` within `window_s` leaves it down, and the supervisor says so. Services stopped through
LocalServices.stop are never restarted. Every restart and give-up is reported to `on_event`.
"""

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from atelier_devtools.local.stack import LocalServices

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class Exit:
    """A service that died: its exit status, how many times in the window, and what happens next."""

    name: str
    returncode: int
    crashes: int
    restart_in_s: float | None  # None: given up.


@dataclass
class _History:
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None


class Supervisor:
    """Watches LocalServices from a thread; start() and stop() it around the stack's life."""

    def __init__(
        self,
        services: LocalServices,
        on_event: Callable[[Exit], None],
        give_up_after: int = 5,
        window_s: float = 120.0,
        poll_s: float = 0.5,
    ) -> None:
        self._services = services
        self._on_event = on_event
        self._give_up_after = give_up_after
        self._window_s = window_s
        self._poll_s = poll_s
        self._history: dict[str, _History] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self.exits: list[Exit] = []

    def start(self) -> None:
        """Begin watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the services are stopped)."""
        self._stopped.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopped.wait(self._poll_s):
            try:
                self._check(time.monotonic())
            except Exception as exc:  # A failed restart or report must not end supervision.
                print(f"supervisor: {exc!r}", file=sys.stderr)

    def _check(self, now: float) -> None:
        for name, returncode in self._services.died().items():
            self._died(name, returncode, now)
        for name, history in self._history.items():
            if history.restart_at is not None and now >= history.restart_at:
                history.restart_at = None
                self._services.restart(name)

    def _died(self, name: str, returncode: int, now: float) -> None:
        history = self._history.setdefault(name, _History())
        if history.restart_at is not None:
            return  # Already scheduled.
        history.crashes = [at for at in history.crashes if now - at < self._window_s] + [now]
        count = len(history.crashes)
        if count > self._give_up_after:
            self._services.forget(name)
            delay = None
        else:
            delay = BACKOFF_S[min(count, len(BACKOFF_S)) - 1]
            history.restart_at = now + delay
        event = Exit(name, returncode, count, delay)
        self.exits.append(event)
        self._on_event(event)
