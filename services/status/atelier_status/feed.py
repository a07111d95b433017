"""Each brand's status changes as the view folds them, for live listeners (the studio's stream).

The view publishes an asset's document every time folding an event changes it, in the order it
folds them, so each listener sees an asset's stages once each and in order. A listener belongs to
one brand and hears nothing of any other. A listener that falls too far behind (a stalled client)
is cut off rather than buffered without bound: its stream ends, and a client that reconnects starts
again from a snapshot of the brand's recent assets.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

# Changes a listener may have waiting before it is cut off.
BACKLOG = 1_000


@dataclass(eq=False)  # Each listener is itself: hashed by identity.
class Listener:
    """One brand's changes, in order, as (sequence number, status document)."""

    brand: str
    # None ends the stream: the listener was cut off.
    changes: asyncio.Queue[tuple[int, dict[str, Any]] | None] = field(default_factory=lambda: asyncio.Queue(BACKLOG))

    async def next(self) -> tuple[int, dict[str, Any]] | None:
        """The next change, waiting for it; None once cut off (safe to cancel: nothing is lost)."""
        return await self.changes.get()

    def cut_off(self) -> None:
        """End the stream at once: what it had waiting is dropped."""
        while not self.changes.empty():
            self.changes.get_nowait()
        self.changes.put_nowait(None)


class Feed:
    """Fans each brand's changes out to its listeners."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._sequence = count(1)
        self._closed = False

    def publish(self, brand: str, status: dict[str, Any]) -> None:
        """A changed document, to every listener of its brand."""
        sequence = next(self._sequence)
        for listener in list(self._listeners.get(brand, ())):
            try:
                listener.changes.put_nowait((sequence, status))
            except asyncio.QueueFull:
                self._listeners[brand].discard(listener)
                listener.cut_off()

    @contextmanager
    def listen(self, brand: str) -> Iterator[Listener]:
        """A listener of one brand's changes from now on, removed on exit."""
        listener = Listener(brand)
        self._listeners[brand].add(listener)
        if self._closed:
            listener.cut_off()
        try:
            yield listener
        finally:
            self._listeners[brand].discard(listener)
            if not self._listeners[brand]:
                del self._listeners[brand]

    async def close(self) -> None:
        """End every stream, and any opened from now on (the service is stopping)."""
        self._closed = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.cut_off()

    def listeners(self, brand: str) -> int:
        """How many listen to a brand now."""
        return len(self._listeners.get(brand, ()))
