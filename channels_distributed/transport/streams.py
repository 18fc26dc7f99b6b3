"""Forwarded connections over Redis: one inbox per process (``Hub``), one ``Peer`` per connection.

Both the distributor and the worker use these. A process's ``Hub`` owns its inbox list
``<prefix>:{p:<id>}:in``, read by the channel layer's ``Reader`` (one blocking multi-pop loop for
every connection of the process), and writes through the layer's ``BatchWriter``. A ``Peer`` is
one side of one connection: events it posts during one loop turn leave as one inbox entry, data
events (body chunks, WebSocket frames) wait for credit from a bounded window that the other side
refills with ``cd.ack`` as it consumes them, so Redis holds at most ``window`` chunks per direction.

A ``Peer`` is the I/O shell of a ``protocol.forwarding.Forwarding`` machine: what arrives, what
Redis answers and what its owner reports go in as events; it carries out the actions that come
back, and passes its owner (the edge, a worker's connection) the owner's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..conf.hosts import HostSpec
from ..exceptions import ClientGone, PeerLost, ProtocolError, RedisRefused
from ..protocol import forwarding as fw
from ..protocol.codec import decode_entry, encode_entry
from ..protocol.envelope import ACCEPT, ACK, EXPIRED, RESET, ack_event, decode_events, encode_events
from ..protocol.forwarding import (
    ACCEPTED,
    CLOSE_PEER,
    FAILURES,
    FINISH_OUTPUT,
    RELEASE,
    SEND_FINAL,
    SEND_RESET,
    UNWATCH,
    WATCH,
    Forwarding,
)
from ..protocol.keys import DistKeys
from ..typing import Event
from .backoff import Backoff
from .connection import Shard
from .inbox import BATCH, Reader
from .loopstate import LoopState

__all__ = ["Hub", "Peer", "new_process_id", "now_ms"]

logger = logging.getLogger("channels_distributed.streams")

_IDLE = "\x00hub-idle"  # a channel nobody sends to: keeps the pop loop running


def new_process_id(role: str) -> str:
    return f"{role}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


class _Inbox(Reader):
    """The process inbox: entries go straight to the connection's ``Peer`` (or are dropped)."""

    def __init__(self, hub: Hub, shard: Shard) -> None:
        super().__init__(shard, hub.inbox, batch=BATCH, capacity_of=lambda _: 1,
                         clock_ms=now_ms)
        self.hub = hub

    def deliver(self, raws: list[bytes]) -> None:
        now = now_ms()
        for raw in raws:
            try:
                target, expires, payload = decode_entry(raw)
                events = decode_events(payload)
            except ProtocolError as exc:
                logger.error("skipping garbage on %s: %s (first bytes %r)",
                             self.key, exc, bytes(raw[:32]))
                continue
            peer = self.hub.peers.get(target) if isinstance(target, str) else None
            if peer is None or expires < now:
                logger.debug("dropping events for finished connection %r", target)
                if isinstance(target, str):
                    self.hub.stray(target, events)
                continue
            peer.feed(events)


class Hub:
    """One process's transport for forwarded connections, in one event loop."""

    def __init__(self, hosts: Sequence[HostSpec], prefix: str, role: str, *,
                 retry_window: float, inbox_capacity: int = 100_000,
                 ttl: float = 60.0) -> None:
        self.keys = DistKeys(prefix)
        self.id = new_process_id(role)
        self.side = fw.EDGE if role == "d" else fw.WORKER
        self.inbox = self.keys.inbox(self.id)
        self.peers: dict[str, Peer] = {}
        self.capacity = inbox_capacity
        self.ttl_ms = int(ttl * 1000)
        # Kept: asyncio.get_running_loop() costs a getpid() syscall on Python < 3.12, and the
        # per-request path would otherwise call it several times.
        self.loop = asyncio.get_running_loop()
        self.state = LoopState(self.loop, hosts, retry_window, self._describe)
        self.topology = self.state.topology
        self._reader = _Inbox(self, self.topology.shard_for(self.inbox))
        if self.topology.cluster is not None:  # follows the inbox if its slot moves
            self._reader.relocate = self.topology.shard_for
        self._idle: asyncio.Task[Any] | None = None

    def _describe(self, key: str) -> str:
        return f"inbox {key!r}"

    def start(self) -> None:
        if self._idle is None:
            self._idle = self.loop.create_task(self._keep_reading())
            self._idle.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _keep_reading(self) -> None:
        # The inbox is popped while someone waits on it: this waiter, who never gets a message.
        # A refusal (an ACL without the commands) ends the wait; the reader logged it at ERROR
        # with the fix, and the inbox is tried again now and then, so that fixing the ACL
        # brings the process back without a restart.
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                await self._reader.get(_IDLE)
            except RedisRefused:
                await backoff.pause()

    @property
    def presence_shard(self) -> Shard:
        # Presence is pub/sub, which is per server: every process uses the first one.
        return self.topology.shards[0]

    def shard_for(self, key: str) -> Shard:
        return self.topology.shard_for(key)

    def push(self, key: str, entry: bytes, capacity: int, ttl_ms: int) -> asyncio.Future[None]:
        return self.state.writer_for(key).push(key, entry, capacity, ttl_ms)

    def send_events(self, inbox: str, conn: str, events: list[Event]) -> asyncio.Future[None]:
        entry = encode_entry(conn, now_ms() + self.ttl_ms, encode_events(events))
        return self.push(inbox, entry, self.capacity, self.ttl_ms)

    def send_events_acked(self, ack: tuple[str, bytes, str], inbox: str, conn: str,
                          events: list[Event]) -> asyncio.Future[Any]:
        """Acknowledge a taken request and send its first events in one atomic step."""
        entry = encode_entry(conn, now_ms() + self.ttl_ms, encode_events(events))
        return self.state.writer_for(inbox).acked_push(ack[0], ack[1], ack[2], inbox, entry,
                                                       self.capacity, self.ttl_ms)

    def same_shard(self, key: str, other: str) -> bool:
        # Whether one script may touch both keys. Standalone servers (single, sharded,
        # Sentinel) run a script over keys of different hash slots; Redis Cluster refuses it
        # (CROSSSLOT), so there the acknowledgement and the first events go as two steps.
        return self.topology.colocated(key, other)

    def stray(self, conn: str, events: list[Event]) -> None:
        """Events for a connection this process no longer has: the machine's fw.CLOSED row says
        what to do (an accept that came too late is answered with a reset)."""
        for event in events:
            _, actions = fw.transition(self.side, fw.CLOSED, str(event.get("type")))
            if SEND_RESET in actions and isinstance(event.get("inbox"), str):
                self.send_events(event["inbox"], conn, [{"type": RESET}]).add_done_callback(
                    lambda f: f.cancelled() or f.exception())

    def open_peer(self, conn: str, window: int, remote: str | None = None,
                  held: bool = False, machine: Forwarding | None = None,
                  owner: Any = None, watch: Any = None) -> Peer:
        """A peer for ``conn``; ``owner.act(peer, action)`` carries out the owner's actions,
        ``watch`` (a ``liveness.Watch``) watches the other process once it is known."""
        if machine is None:
            machine = Forwarding(self.side, window)
        peer = Peer(self, conn, machine, remote, held, owner, watch)
        self.peers[conn] = peer
        return peer

    def close_peer(self, peer: Peer) -> None:
        peer.flush()
        if self.peers.get(peer.conn) is peer:
            del self.peers[peer.conn]

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        for peer in list(self.peers.values()):
            peer.flush()
        await self._reader.close()
        await self.state.close()




class Peer:
    """One side of one forwarded connection: the I/O shell of its ``Forwarding`` machine."""

    def __init__(self, hub: Hub, conn: str, machine: Forwarding, remote: str | None,
                 held: bool, owner: Any, watch: Any) -> None:
        self.hub = hub
        self.conn = conn
        self.machine = machine
        self.owner = owner
        self.watch = watch
        self.remote = remote
        self.remote_id: str | None = None  # the other process, once known (for the watch)
        self.held = held  # outgoing events wait until released (worker: until acknowledged)
        # (processing list, entry, state key): the first flush acknowledges and sends at once.
        self.ack_with: tuple[str, bytes, str] | None = None
        self.finished = False  # nothing more goes out (the other side needs nothing more)
        self.failed: BaseException | None = None
        self.final: Event | None = None  # the owner's last word (SEND_FINAL)
        self._out: list[Event] = []
        self._scheduled = False
        self._inbound: collections.deque[Event] = collections.deque()
        self._wakers: list[asyncio.Future[None]] = []
        # Only the side that does not know its remote yet (the distributor) waits for cd.accept.
        self.accepted: asyncio.Future[None] | None = (
            hub.loop.create_future() if remote is None else None)

    # The machine -----------------------------------------------------------------------------
    def handle(self, event: str, error: BaseException | None = None,
               message: Event | None = None, now: float = 0.0) -> None:
        """Feed ``event`` to the machine and carry out its actions, in order (one call: this
        runs several times per request)."""
        for action in self.machine.handle(event, now):  # the common ones first
            if action == RELEASE:
                self.release()
            elif action == CLOSE_PEER:
                self.hub.close_peer(self)
                self.owner = None  # no cycle with the owner: freed by reference counting
            elif action == WATCH:
                self.watch.add(str(self.remote_id), self)
            elif action == UNWATCH:
                self.watch.remove(str(self.remote_id), self)  # unwatched: removes nothing
            elif action == SEND_FINAL:
                if self.final is not None:
                    self.post(self.final)
            elif action == FINISH_OUTPUT:
                self.finish_output()
            elif action == ACCEPTED:
                self._accepted(message or {})
            elif action in FAILURES:
                kind, text = FAILURES[action]
                self._fail(error or kind(text.format(self.conn)))
            elif action == SEND_RESET:
                self.hub.stray(self.conn, [message or {}])
            else:
                self.owner.act(self, action)

    def tick(self, now: float) -> None:
        """The machine's timer, on the caller's clock."""
        if self.machine.expired(now):
            self.handle(fw.DEADLINE, None, None, now)

    def _accepted(self, message: Event) -> None:
        self.remote = str(message.get("inbox"))
        self.remote_id = str(message.get("worker"))
        if self.accepted is not None and not self.accepted.done():
            self.accepted.set_result(None)

    # Incoming --------------------------------------------------------------------------------
    def feed(self, events: list[Event], local: bool = False) -> None:
        """Take what the other side sent (``local``: what the owner adds to it itself)."""
        gone = False
        for event in events:
            kind = event["type"]
            if kind == ACK:
                self.machine.grant(int(event.get("n", 1)))
            elif kind in (ACCEPT, RESET, EXPIRED):
                self.handle(kind, None, event)
            else:
                self._inbound.append(event)
                if kind == "http.disconnect" or kind == "websocket.disconnect":
                    gone = not local
        self._notify()
        if gone:  # the edge says the client left: send_data() gives up, even while it waits
            self.handle(fw.CLIENT_GONE, ClientGone(f"the client of {self.conn} went away"))

    def _notify(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(None)

    async def _wait(self) -> None:
        waker = self.hub.loop.create_future()
        self._wakers.append(waker)
        await waker

    async def receive(self) -> Event:
        """The next event from the other side; PeerLost when it is gone."""
        while not self._inbound:
            if self.failed is not None:
                raise self.failed
            await self._wait()
        return self._inbound.popleft()

    def receive_nowait(self) -> Event | None:
        return self._inbound.popleft() if self._inbound else None

    def fail(self, error: BaseException) -> None:
        """The other process went away (``liveness.Watch`` says so)."""
        self.handle(fw.PEER_GONE, error)

    def _fail(self, error: BaseException) -> None:
        if self.failed is None:
            self.failed = error
        if self.accepted is not None and not self.accepted.done():
            self.accepted.set_exception(error)
            self.accepted.exception()  # retrieved: nobody may be waiting any more
        self._notify()

    def fail_on_error(self, future: asyncio.Future[Any]) -> None:  # a push's done callback
        if future.cancelled():
            self.handle(fw.FAILED, PeerLost(f"sending for {self.conn} was cancelled"))
        elif future.exception() is not None:
            self.handle(fw.FAILED, future.exception())

    # Outgoing --------------------------------------------------------------------------------
    def post(self, event: Event) -> None:
        """Queue a control event for the next flush (same loop turn)."""
        if self.finished:
            return
        self._out.append(event)
        self._schedule()

    def finish_output(self) -> None:
        """Drop what is queued and send nothing more: the exchange is complete."""
        self.finished = True
        self._out.clear()

    async def send_data(self, event: Event) -> bool:
        """Queue a data event once the window has room. False if the peer is gone."""
        while True:
            if self.failed is not None:
                return False
            if self.machine.spend():
                break
            await self._wait()
        self.post(event)
        return True

    def consumed(self, count: int = 1) -> None:
        """Give ``count`` units of credit back to the other side."""
        if self._out and self._out[-1]["type"] == ACK:
            self._out[-1]["n"] += count
            return
        self.post(ack_event(count))

    def release(self) -> None:
        self.held = False
        if self._out:
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and not self.held:
            self._scheduled = True
            self.hub.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self.held or not self._out or self.remote is None:
            return
        events, self._out = self._out, []
        if self.ack_with is not None:
            ack, self.ack_with = self.ack_with, None
            self.held = True  # nothing more goes out until the acknowledgement is confirmed
            self.hub.send_events_acked(ack, self.remote, self.conn, events).add_done_callback(
                self._acked)
            return
        future = self.hub.send_events(self.remote, self.conn, events)
        future.add_done_callback(self._sent)

    def _acked(self, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self.handle(fw.FAILED, PeerLost(
                f"could not acknowledge {self.conn}: {error or 'cancelled'}"))
        elif future.result() == 1:
            self.handle(fw.ACKED)
        elif future.result() == -1:
            self.handle(fw.REAPED, PeerLost(f"{self.conn} was given back to its queue"))
        else:
            self.handle(fw.FULL, PeerLost(
                f"the inbox of the other side of {self.conn} is full"))

    def _sent(self, future: asyncio.Future[None]) -> None:
        error = future.exception()
        if error is not None:
            logger.warning("connection %s: events lost: %s", self.conn, error)
            self.handle(fw.FAILED, PeerLost(
                f"could not send to the other side of {self.conn}: {error}"))
