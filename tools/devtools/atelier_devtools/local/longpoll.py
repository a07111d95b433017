"""Kafka's long polling in front of the embedded cluster.

librdkafka's mock broker answers a fetch that finds no records only once the fetch's whole wait has
passed, even when records arrive meanwhile; a Kafka broker answers as soon as they do. Locally each
hop of the pipeline then cost up to its consumer's fetch wait, and short waits cost polling (idle
stack 14-17% of a core at 25 ms, bench/results/preview-cpu-2core.md).

LongPolling relays each client connection to its mock broker, one request at a time as a broker
serves a connection, and answers fetches as Kafka does: it asks the mock without a wait and, when no
record came back, holds the fetch until a produce passes through or the client's wait runs out, then
asks again. Every other request passes unchanged. The mock advertises the relay's ports in its
metadata, so clients that bootstrap here keep to the relay.
"""

import asyncio
import contextlib
import functools
import struct
import threading

from aiokafka.protocol import fetch

PRODUCE, FETCH = 0, 1
# The fetch versions whose requests carry MaxWait at a fixed place (non-flexible: v0-v11, all that
# aiokafka speaks); others pass unchanged.
FETCH_RESPONSES = {version: getattr(fetch, f"FetchResponse_v{version}") for version in range(12)}
# Produce requests whose acks can be read (non-flexible): with acks=0 no response comes.
PRODUCE_VERSIONS = range(9)

Broker = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LongPolling:
    """A relay per mock broker, on loopback, run by a thread of its own."""

    def __init__(self, upstreams: list[tuple[str, int]]) -> None:
        self._upstreams = upstreams
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka long polling", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        # Bumped by each produce relayed; held fetches wait for it to move.
        self._generation = 0
        self._produced = asyncio.Event()
        # Fetches asked of the mock (each without a wait): what a held fetch costs.
        self.fetches = 0

    def start(self) -> list[int]:
        """Listen for each upstream; the ports, in the upstreams' order."""
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Close the listeners and every relayed connection."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    async def _listen(self) -> list[int]:
        for upstream in self._upstreams:
            self._servers.append(await asyncio.start_server(functools.partial(self._accept, upstream), "127.0.0.1", 0))
        return [server.sockets[0].getsockname()[1] for server in self._servers]

    async def _accept(
        self, upstream: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(upstream, reader, writer)
        except asyncio.CancelledError:
            pass  # The relay stops (asyncio would log the connection's cancellation as an error).
        finally:
            self._connections.discard(task)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _relay(
        self, upstream: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One client connection: each request to the mock in turn, its answer back."""
        try:
            broker = await asyncio.open_connection(*upstream)
        except OSError:  # The broker is down: so is its relay, to this client.
            writer.close()
            return
        try:
            while True:
                request = await _frame(reader)
                api_key, version = struct.unpack_from(">hh", request)
                if api_key == FETCH and version in FETCH_RESPONSES:
                    response: bytes | None = await self._fetch(request, version, broker)
                elif api_key == PRODUCE and version in PRODUCE_VERSIONS and _acks(request, version) == 0:
                    await _send(broker[1], request)
                    response = None
                else:
                    response = await _exchange(request, broker)
                if response is not None:
                    await _send(writer, response)
                if api_key == PRODUCE:
                    self._generation += 1
                    self._produced.set()
                    self._produced = asyncio.Event()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # Either side went away: so does the other.
        finally:
            broker[1].close()
            writer.close()

    async def _fetch(self, request: bytes, version: int, broker: Broker) -> bytes:
        """A fetch answered when records (or an error) come back, or when its wait runs out."""
        at = _body(request) + 4  # ReplicaId, then MaxWait.
        (max_wait_ms,) = struct.unpack_from(">i", request, at)
        asking = bytearray(request)
        struct.pack_into(">i", asking, at, 0)
        deadline = self._loop.time() + max_wait_ms / 1000
        while True:
            generation = self._generation
            response = await _exchange(bytes(asking), broker)
            self.fetches += 1
            remaining = deadline - self._loop.time()
            if remaining <= 0 or _answers(response, version):
                return response
            if generation == self._generation:  # No produce since the mock was asked: wait for one.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._produced.wait(), remaining)


def _answers(response: bytes, version: int) -> bool:
    """Whether a fetch response carries records or an error (rather than nothing yet)."""
    decoded = FETCH_RESPONSES[version].decode(response[4:])  # After the correlation id.
    if getattr(decoded, "error_code", 0):
        return True
    return any(partition[1] or partition[-1] for _topic, partitions in decoded.topics or [] for partition in partitions)


def _body(request: bytes) -> int:
    """Where a request's body begins: after api key, version, correlation id and client id."""
    (length,) = struct.unpack_from(">h", request, 8)
    return 10 + max(int(length), 0)


def _acks(request: bytes, version: int) -> int:
    at = _body(request)
    if version >= 3:  # A transactional id first.
        (length,) = struct.unpack_from(">h", request, at)
        at += 2 + max(length, 0)
    return int(struct.unpack_from(">h", request, at)[0])


async def _frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(struct.pack(">i", len(payload)) + payload)
    await writer.drain()


async def _exchange(request: bytes, broker: Broker) -> bytes:
    await _send(broker[1], request)
    return await _frame(broker[0])
