"""One process's transport for forwarded connections: its inbox, and the peers it feeds.

Both the distributor and the worker use a ``Hub``. It owns the process's inbox list
``<prefix>:{p:<id>}:in``, read by the channel layer's ``Reader`` (one blocking multi-pop loop for
every connection of the process), writes through the layer's ``BatchWriter``, and hands each
entry to the ``Peer`` (``streams.py``) of its connection. Events for a connection the process no
longer has go to the forwarding machine's ``CLOSED`` rows (``stray``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from ..conf.hosts import HostSpec
from ..exceptions import ProtocolError, RedisRefused
from ..figures import host_name
from ..protocol import forwarding as fw
from ..protocol.codec import decode_entry, encode_entry
from ..protocol.envelope import RESET, decode_events, encode_events
from ..protocol.keys import DistKeys
from ..transport.backoff import Backoff
from ..transport.loopstate import LoopState
from ..transport.reader import BATCH, Reader
from ..transport.topology import Shard
from ..typing import Event

__all__ = ["Hub", "Streamed", "new_process_id", "now_ms"]

logger = logging.getLogger(__name__)

_IDLE = "\x00hub-idle"  # a channel nobody sends to: keeps the pop loop running
_RESET = {"type": RESET}  # posted outside any stream: shared, only ever read


class Streamed(Protocol):
    """What the hub knows of a connection's peer (``streams.Peer``)."""

    conn: str

    def feed(self, events: list[Event], seq: int = 0) -> None: ...

    def flush(self) -> None: ...


# A process id says which side the process is: d(istributor, the edge) or w(orker), and where
# it runs (an operator reading a key or a log line knows the machine). Tools read the host and
# pid from the process's card (figures.py), never by parsing ids.
_ID_PREFIX = {fw.Side.EDGE: "d", fw.Side.WORKER: "w"}


def new_process_id(side: fw.Side) -> str:
    """A process id for a process of ``side`` (``forwarding.EDGE`` or ``WORKER``)."""
    return f"{_ID_PREFIX[side]}-{host_name()}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


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
                seq, events = decode_events(payload)
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
            peer.feed(events, seq)


class Hub:
    """One process's transport for forwarded connections, in one event loop."""

    def __init__(self, hosts: Sequence[HostSpec], prefix: str, *, side: fw.Side,
                 retry_window: float, inbox_capacity: int = 100_000,
                 ttl: float = 60.0) -> None:
        self.keys = DistKeys(prefix)
        self.id = new_process_id(side)
        self.side = side
        self.inbox = self.keys.inbox(self.id)
        self.peers: dict[str, Streamed] = {}
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

    def send_events(self, inbox: str, conn: str, events: list[Event],
                    seq: int = 0) -> asyncio.Future[None]:
        """Send ``events`` of ``conn`` as one entry (numbered ``seq`` in its stream, if any)."""
        entry = encode_entry(conn, now_ms() + self.ttl_ms, encode_events(events, seq))
        return self.push(inbox, entry, self.capacity, self.ttl_ms)

    def send_aside(self, inbox: str, conn: str, event: Event) -> None:
        """Send one event outside the connection's stream, without waiting: if it is lost, the
        other side finds out by its own timers."""
        self.send_events(inbox, conn, [event]).add_done_callback(_consume)

    def send_events_acked(self, ack: tuple[str, bytes, str], inbox: str, conn: str,
                          events: list[Event], seq: int = 0) -> asyncio.Future[Any]:
        """Acknowledge a taken request and send its first events in one atomic step."""
        entry = encode_entry(conn, now_ms() + self.ttl_ms, encode_events(events, seq))
        return self.state.writer_for(inbox).acked_push(ack[0], ack[1], ack[2], inbox, entry,
                                                       self.capacity, self.ttl_ms)

    def same_shard(self, key: str, other: str) -> bool:
        # Whether one script may touch both keys. Standalone servers (single, sharded,
        # Sentinel) run a script over keys of different hash slots; Redis Cluster refuses it
        # (CROSSSLOT), so there the acknowledgement and the first events go as two steps.
        return self.topology.colocated(key, other)

    def stray(self, conn: str, events: list[Event]) -> None:
        """Events for a connection this process no longer has: an accept that came too late,
        or a probe of one that ended here, is answered with a reset (``stray_actions``)."""
        for event in events:
            actions = fw.stray_actions(self.side, str(event.get("type")))
            if fw.Action.SEND_RESET in actions and isinstance(event.get("inbox"), str):
                self.send_aside(event["inbox"], conn, _RESET)

    def add_peer(self, peer: Streamed) -> None:
        self.peers[peer.conn] = peer

    def close_peer(self, peer: Streamed) -> None:
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


def _consume(future: asyncio.Future[Any]) -> None:
    # An event sent aside whose push failed: its receiver's timers find out.
    if not future.cancelled() and future.exception() is not None:
        logger.debug("an event could not be sent: %s", future.exception())
