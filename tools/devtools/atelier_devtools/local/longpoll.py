"""Kafka's long polling in front of the embedded cluster.

librdkafka's mock broker answers a fetch that finds no records only once the fetch's whole wait has
passed, even when records arrive meanwhile; a Kafka broker answers as soon as they do. Locally each
hop of the pipeline then cost up to its consumer's fetch wait, and short waits cost polling (idle
stack 14-17% of a core at 25 ms, bench/results/preview-cpu-2core.md).

LongPolling relays each client connection to its mock broker, one request at a time as a broker
serves a connection, and answers fetches as Kafka does: it asks the mock without a wait and, when no
record came back, holds the fetch until a produce to one of its topics passes through (then asks
again) or the client's wait runs out (then answers as empty). Every other request passes unchanged.
The mock advertises the relay's ports in its metadata, so clients that bootstrap here keep to the
relay.
"""

import asyncio
import functools
import logging
import struct
import threading
from collections import defaultdict
from collections.abc import Iterable

from aiokafka.protocol import fetch, produce

log = logging.getLogger(__name__)

PRODUCE, FETCH = 0, 1
# The versions read here: non-flexible, all that the mock and aiokafka speak (others pass unchanged).
FETCH_VERSIONS = {
    version: (getattr(fetch, f"FetchRequest_v{version}"), getattr(fetch, f"FetchResponse_v{version}"))
    for version in range(12)
}
PRODUCE_VERSIONS = {version: getattr(produce, f"ProduceRequest_v{version}") for version in range(9)}

Broker = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LongPolling:
    """A relay per mock broker, on loopback, run by a thread of its own."""

    def __init__(self, upstreams: list[tuple[str, int]]) -> None:
        self._upstreams = upstreams
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        # Produces relayed per topic, and what a fetch held on a topic waits on.
        self._landed: defaultdict[str, int] = defaultdict(int)
        self._waiting: dict[str, asyncio.Event] = {}
        # Fetches asked of the mock (each without a wait): what holding costs.
        self.fetches = 0

    def start(self) -> list[int]:
        """Listen for each upstream; the ports, in the upstreams' order."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka long polling", daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Close the listeners and every relayed connection (once)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()

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
        except Exception:  # What the relay cannot read ends that connection, never the others.
            log.exception("kafka long polling: a relayed connection failed")
        finally:
            writer.close()
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
            return
        try:
            while True:
                request = await _frame(reader)
                api_key, version = struct.unpack_from(">hh", request)
                if api_key == FETCH and version in FETCH_VERSIONS:
                    await _send(writer, await self._fetch(request, version, broker))
                elif api_key == PRODUCE and version in PRODUCE_VERSIONS:
                    produced = PRODUCE_VERSIONS[version].decode(request[_body(request) :])
                    if produced.required_acks == 0:  # No answer comes (nor is it known when the records land).
                        await _send(broker[1], request)
                        continue
                    await _send(writer, await _exchange(request, broker))
                    self._landed_on(topic for topic, _partitions in produced.topics)
                else:
                    await _send(writer, await _exchange(request, broker))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # Either side went away: so does the other.
        finally:
            broker[1].close()

    async def _fetch(self, request: bytes, version: int, broker: Broker) -> bytes:
        """A fetch answered when records (or an error) come back, or when its wait runs out."""
        at = _body(request)
        fetching, answer = FETCH_VERSIONS[version]
        topics = [topic for topic, _partitions in fetching.decode(request[at:]).topics]
        (max_wait_ms,) = struct.unpack_from(">i", request, at + 4)  # After the replica id.
        asking = bytearray(request)
        struct.pack_into(">i", asking, at + 4, 0)
        deadline = asyncio.get_running_loop().time() + max_wait_ms / 1000
        while True:
            seen = {topic: self._landed[topic] for topic in topics}
            response = await _exchange(bytes(asking), broker)
            self.fetches += 1
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or _answers(answer.decode(response[4:]), version):  # After the correlation id.
                return response
            if not await self._until_landed(seen, remaining):
                return response  # Nothing landed on these topics within the wait: as empty as it was.

    def _landed_on(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self._landed[topic] += 1
            if (event := self._waiting.pop(topic, None)) is not None:
                event.set()

    async def _until_landed(self, seen: dict[str, int], timeout: float) -> bool:
        """Whether records landed on any of the topics (since `seen`) within `timeout` seconds."""
        if any(self._landed[topic] != count for topic, count in seen.items()):
            return True
        waits = [asyncio.ensure_future(self._waiting.setdefault(topic, asyncio.Event()).wait()) for topic in seen]
        try:
            done, _pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return bool(done)


def _answers(decoded: object, version: int) -> bool:
    """Whether a decoded fetch response carries records or an error, or sends the client to another
    replica (rather than nothing yet)."""
    if getattr(decoded, "error_code", 0):
        return True
    for _topic, partitions in getattr(decoded, "topics", None) or []:
        for partition in partitions:
            if partition[1] or partition[-1] or (version >= 11 and partition[6] != -1):
                return True
    return False


def _body(request: bytes) -> int:
    """Where a request's body begins: after api key, version, correlation id and client id."""
    (length,) = struct.unpack_from(">h", request, 8)
    return 10 + max(int(length), 0)


async def _frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(struct.pack(">i", len(payload)) + payload)
    await writer.drain()


async def _exchange(request: bytes, broker: Broker) -> bytes:
    await _send(broker[1], request)
    return await _frame(broker[0])
