"""An edge and a worker connected in memory: the shells of the forwarding machine without Redis.

``MemoryLink`` stands for Redis between one ``Edge`` (distributor/edge.py, with the relay of
distributor/relay.py) and a worker's ``Connection``s (worker/connection.py): route queues, the
processing list, given-up marks and both processes' inboxes, as Python lists and sets. Events
pass through the real encoding, a loop turn later, as they would through Redis. The link can
fail like Redis (``down``), lose the worker (``worker_gone``), and hold the worker's take
(``taking``) or its acknowledgement's answer (``reaped``, ``full``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels_distributed.conf import DistributorConfig, parse_hosts
from channels_distributed.distributor.edge import Edge
from channels_distributed.exceptions import PeerLost, RedisUnavailable
from channels_distributed.forwarding.hub import Hub, new_process_id, now_ms
from channels_distributed.protocol import forwarding as fw
from channels_distributed.protocol.envelope import (
    accept_event,
    decode_connect,
    decode_events,
    encode_events,
)
from channels_distributed.protocol.keys import DistKeys
from channels_distributed.protocol.routing import RouteTable
from channels_distributed.transport.scripts import FULL, GIVEN_UP, OURS, REAPED
from channels_distributed.worker.connection import Connection
from channels_distributed.worker.context import WorkerContext

KEY = "mem"


@dataclass
class MemoryLink:
    """Redis, in memory."""

    queue: list[bytes] = field(default_factory=list)
    processing: list[bytes] = field(default_factory=list)
    given_up: set[bytes] = field(default_factory=set)
    hubs: dict[str, MemoryHub] = field(default_factory=dict)  # inbox key -> its hub
    down: bool = False  # every command fails
    reaped: bool = False  # the next acknowledgement finds its request given back
    full: bool = False  # acknowledged pushes find the edge's inbox full
    sent: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)
    # Entries that vanish (as if Redis evicted them): (inbox key, the entry's number in its
    # stream) of the entries to lose.
    lose: set[tuple[str, int]] = field(default_factory=set)
    numbers: list[tuple[str, int]] = field(default_factory=list)  # (inbox, seq) of each entry
    sent_connects: list[bytes] = field(default_factory=list)  # every request queued
    # Cleared: acknowledged pushes (a worker's first output) wait for it before Redis runs them.
    acked_pushes: asyncio.Event = field(default_factory=asyncio.Event)
    # Cleared: the edge's give-up scripts wait for it before Redis runs them.
    give_ups: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.acked_pushes.set()
        self.give_ups.set()

    def failed(self) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_exception(RedisUnavailable("the memory link is down"))
        return future

    def done(self, result: Any = None) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(result)
        return future

    def deliver(self, inbox: str, conn: str, events: list[dict[str, Any]], seq: int = 0) -> None:
        seq, copy = decode_events(encode_events(events, seq))
        self.sent.append((inbox, conn, copy))
        self.numbers.append((inbox, seq))
        hub = self.hubs.get(inbox)
        if hub is None or (seq and (inbox, seq) in self.lose):
            return
        peer = hub.peers.get(conn)
        if peer is None:
            hub.stray(conn, copy)
        else:
            peer.feed(copy, seq)

    def acknowledge(self, raw: bytes) -> int:
        """The ACK script (transport/scripts.py)."""
        if self.reaped or raw not in self.processing:
            return REAPED
        self.processing.remove(raw)
        if raw in self.given_up:
            self.given_up.discard(raw)
            return GIVEN_UP
        return OURS

    def give_up(self, raw: bytes) -> int:
        """The GIVE_UP script."""
        if raw in self.queue:
            self.queue.remove(raw)
            return 1
        self.given_up.add(raw)
        return 0


class MemoryHub(Hub):
    """A process's hub whose Redis is a ``MemoryLink``."""

    def __init__(self, side: str, link: MemoryLink) -> None:  # no Redis, no reader
        self.keys = DistKeys("mem")
        self.id = new_process_id(side)
        self.side = side
        self.inbox = self.keys.inbox(self.id)
        self.peers = {}
        self.capacity = 1000
        self.ttl_ms = 60_000
        self.loop = asyncio.get_running_loop()
        self.link = link
        link.hubs[self.inbox] = self

    def push(self, key: str, entry: bytes, capacity: int, ttl_ms: int) -> asyncio.Future[None]:
        if self.link.down:
            return self.link.failed()
        self.link.queue.append(entry)
        self.link.sent_connects.append(entry)
        return self.link.done()

    def send_events(self, inbox: str, conn: str, events: list[Any],
                    seq: int = 0) -> asyncio.Future[None]:
        if self.link.down:
            return self.link.failed()
        self.loop.call_soon(self.link.deliver, inbox, conn, list(events), seq)
        return self.link.done()

    def send_events_acked(self, ack: tuple[str, bytes, str], inbox: str, conn: str,
                          events: list[Any], seq: int = 0) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self._acked_push(ack, inbox, conn, list(events), seq))

    async def _acked_push(self, ack: tuple[str, bytes, str], inbox: str, conn: str,
                          events: list[Any], seq: int) -> int:
        """The ACKED_PUSH script."""
        await self.link.acked_pushes.wait()
        if self.link.down:
            raise RedisUnavailable("the memory link is down")
        answer = self.link.acknowledge(ack[1])
        if answer != OURS:
            return answer
        if self.link.full:
            return FULL
        self.loop.call_soon(self.link.deliver, inbox, conn, events, seq)
        return OURS

    def same_shard(self, key: str, other: str) -> bool:
        return True

    async def close(self) -> None:
        pass


class MemoryWatch:
    """``liveness.Watch`` without presence: the test says when a process is gone."""

    def __init__(self) -> None:
        self.watched: dict[str, set[Any]] = {}

    def add(self, process: str, peer: Any) -> None:
        self.watched.setdefault(process, set()).add(peer)

    def remove(self, process: str, peer: Any) -> None:
        self.watched.get(process, set()).discard(peer)

    def gone(self, process: str) -> None:
        for peer in self.watched.pop(process, set()):
            peer.process_gone(PeerLost(f"process {process} went away"))

    async def close(self) -> None:
        pass


class MemoryEdge(Edge):
    """The edge, its give-up script run by the link, a worker always registered."""

    link: MemoryLink

    async def _any_registered(self, key: str) -> bool | None:
        return None if self.link.down else True

    async def _withdraw(self, queue: str, state: str, entry: bytes) -> int:
        await asyncio.sleep(0)
        await self.link.give_ups.wait()
        return 1 if self.link.down else self.link.give_up(entry)


class MemoryRoute:
    """The worker's ``RouteQueue`` as ``Connection`` uses it."""

    def __init__(self, link: MemoryLink) -> None:
        self.link = link
        self.keys = DistKeys("mem")
        self.route = KEY
        self.processing = self.keys.processing(KEY, "w")
        self.hold = asyncio.Event()  # cleared: acknowledgements wait for it
        self.hold.set()

    def state(self, conn: str) -> str:
        return self.keys.state(KEY, conn)

    def drop(self, raw: bytes) -> None:
        if raw in self.link.processing:
            self.link.processing.remove(raw)

    async def ack(self, raw: bytes, conn: str) -> int:
        await self.hold.wait()
        if self.link.down:
            raise RedisUnavailable("the memory link is down")
        return self.link.acknowledge(raw)


App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Deployment:
    """One edge and one worker process over a ``MemoryLink``."""

    def __init__(self, app: App, worker_timeout: float = 5.0, window: int = 16,
                 max_chunk: int = 64 * 1024, probe_after: float = 5.0,
                 redis_timeout: float = 1.0) -> None:
        self.link = MemoryLink()
        self.config = DistributorConfig(RouteTable({"/": KEY}), tuple(parse_hosts(["redis://m"])),
                                        "mem", worker_timeout=worker_timeout, window=window,
                                        max_chunk=max_chunk, redis_timeout=redis_timeout)
        self.edge_hub = MemoryHub(fw.EDGE, self.link)
        self.edge_watch = MemoryWatch()
        self.edge = MemoryEdge(self.config, self.edge_hub, watch=self.edge_watch)
        self.edge.link = self.link
        self.worker_hub = MemoryHub(fw.WORKER, self.link)
        self.worker_watch = MemoryWatch()
        self.context = WorkerContext(
            hub=self.worker_hub, watch=self.worker_watch, app=app,  # type: ignore[arg-type]
            app_name="tests:app", window=window, max_chunk=max_chunk,
            accept_event=accept_event(self.worker_hub.id, self.worker_hub.inbox),
            probe_after=probe_after, lifespan_state={})
        self.route = MemoryRoute(self.link)
        self.connections: list[asyncio.Task[None]] = []
        self.connection_objects: list[Connection] = []
        self.expired = 0

    def take(self) -> bool:
        """The worker takes the first queued request, as Node._dispatch does; False if none."""
        if not self.link.queue:
            return False
        raw = self.link.queue.pop(0)
        self.link.processing.append(raw)
        connect = decode_connect(raw)
        if connect.deadline_ms < now_ms():
            for action in fw.Forwarding(fw.WORKER, 0).handle(fw.Event.DEADLINE):
                if action is fw.Action.DROP:
                    self.link.processing.remove(raw)
                elif action is fw.Action.SEND_EXPIRED:
                    self.expired += 1
                    self.worker_hub.send_events(connect.reply, connect.conn,
                                                [{"type": fw.Event.EXPIRED.value}])
            return True
        connection = Connection(self.context, self.route, raw, connect)  # type: ignore[arg-type]
        self.connection_objects.append(connection)
        self.connections.append(asyncio.get_running_loop().create_task(connection.run()))
        return True

    async def serve(self) -> None:
        """A worker that takes whatever is queued, until cancelled."""
        while True:
            if not self.take():
                await asyncio.sleep(0.001)

    async def close(self) -> None:
        await self.edge.close()
        for task in self.connections:
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
