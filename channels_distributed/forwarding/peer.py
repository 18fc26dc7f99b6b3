"""One side of one forwarded connection over Redis: the ``Peer``, the I/O shell of its machine.

A ``Peer`` belongs to a process's ``Hub`` (``hub.py``). Events it posts during one loop turn
leave as one inbox entry, numbered in its direction's stream (protocol 2), so that the other side
sees a lost entry; data events (body chunks, WebSocket frames) wait for credit from a bounded
window that the other side refills with ``cd.ack`` as it consumes them, so Redis holds at most
``window`` chunks per direction. A receiver that waits long on a quiet stream may probe it
(``cd.probe``): the answer counts what the other side sent.

What arrives, what Redis answers and what its owner reports go into its
``protocol.forwarding.Forwarding`` machine as events; the peer carries out the actions that come
back, and passes its owner (the edge, a worker's connection) the owner's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Protocol

from ..exceptions import ClientGone, PeerLost
from ..protocol import forwarding as fw
from ..protocol.envelope import (
    ACCEPT,
    ACK,
    EXPIRED,
    PROBE,
    PROBED,
    RESET,
    VERSION,
    ack_event,
)
from ..protocol.forwarding import (
    ABORT,
    ACCEPTED,
    CLOSE_PEER,
    FAILURES,
    FINISH_OUTPUT,
    RELEASE,
    SEND_EXPIRED,
    SEND_FINAL,
    SEND_RESET,
    UNWATCH,
    WATCH,
    Forwarding,
)
from ..transport.backoff import Backoff
from ..transport.scripts import FULL, GIVEN_UP, OURS, REAPED
from ..typing import Event
from .hub import Hub

__all__ = ["ACK_EVENTS", "Owner", "Peer", "Watcher", "open_peer"]

logger = logging.getLogger(__name__)

#: An acknowledgement's answer (transport.scripts) as the worker machine's event: decoded here
#: only.
ACK_EVENTS = {OURS: fw.ACKED, REAPED: fw.REAPED, GIVEN_UP: fw.GIVEN_UP, FULL: fw.FULL}
# Posted out of their stream (unnumbered): shared, only ever read.
_RESET = {"type": RESET}
_EXPIRED = {"type": EXPIRED}
# Probes of a quiet stream: the first after the caller's interval, then less often, up to this.
_PROBE_LIMIT = 10.0


class Owner(Protocol):
    """Who carries out a peer's owner actions: the edge, or a worker's connection."""

    def act(self, peer: Peer, action: str) -> None: ...


class Watcher(Protocol):
    """Who fails a peer whose other process went away (``liveness.Watch``)."""

    def add(self, process: str, peer: Peer) -> None: ...

    def remove(self, process: str, peer: Peer) -> None: ...

    async def close(self) -> None: ...


def open_peer(hub: Hub, conn: str, window: int, *, remote: str | None = None,
              held: bool = False, machine: Forwarding | None = None, owner: Owner | None = None,
              watch: Watcher | None = None, version: int = VERSION) -> Peer:
    """A peer for ``conn`` in ``hub``; ``owner.act(peer, action)`` carries out the owner's
    actions, ``watch`` (a ``liveness.Watch``) watches the other process once it is known;
    ``version``: the protocol version the other side speaks."""
    if machine is None:
        machine = Forwarding(hub.side, window)
    peer = Peer(hub, conn, machine, remote, held, owner, watch, version)
    hub.add_peer(peer)
    return peer


class Peer:
    """One side of one forwarded connection: the I/O shell of its ``Forwarding`` machine."""

    def __init__(self, hub: Hub, conn: str, machine: Forwarding, remote: str | None,
                 held: bool, owner: Owner | None, watch: Watcher | None,
                 version: int = VERSION) -> None:
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
        self._wakers: list[asyncio.Future[bool]] = []
        # Only the side that does not know its remote yet (the distributor) waits for cd.accept.
        self.accepted: asyncio.Future[None] | None = (
            hub.loop.create_future() if remote is None else None)
        # Entries of each direction are numbered (protocol 2+): a lost one breaks the stream.
        self.numbered = version >= 2
        self.sent_seq = 0  # entries this side sent
        self.recv_seq = 0  # entries that arrived from the other side, in order

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
                if self.watch is not None:
                    self.watch.add(str(self.remote_id), self)
            elif action == UNWATCH:
                if self.watch is not None:  # unwatched: removes nothing
                    self.watch.remove(str(self.remote_id), self)
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
            elif action == ABORT:
                if self.remote is not None:
                    self.hub.send_aside(self.remote, self.conn, _RESET)
                self.finish_output()
            elif action == SEND_EXPIRED:
                logger.info("connection %s will not run: its edge gave it up at its deadline",
                            self.conn)
                if self.remote is not None:
                    self.hub.send_aside(self.remote, self.conn, _EXPIRED)
            elif self.owner is not None:
                self.owner.act(self, action)
            else:  # pragma: no cover - owner actions come only while it owns the peer
                raise RuntimeError(f"connection {self.conn}: nobody carries out {action!r}")

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
    def feed(self, events: list[Event], seq: int = 0, *, local: bool = False) -> None:
        """What arrived for this connection: one entry's events (``seq``: its number in the
        stream, 0 for an entry outside it; ``local``: what the owner adds itself)."""
        if seq:
            if seq != self.recv_seq + 1:
                self._gap(f"entry {seq} arrived where {self.recv_seq + 1} was due")
                return
            self.recv_seq = seq
        gone = False
        for event in events:
            kind = event["type"]
            if kind == ACK:
                self.machine.grant(int(event.get("n", 1)))
            elif kind in (ACCEPT, RESET, EXPIRED):
                self.handle(kind, None, event)
            elif kind == PROBE:
                if self.remote is not None:
                    self.hub.send_aside(self.remote, self.conn,
                                        {"type": PROBED, "sent": self.sent_seq})
            elif kind == PROBED:
                sent = event.get("sent")
                if isinstance(sent, int) and sent > self.recv_seq:
                    self._gap(f"the other side sent {sent} entries, {self.recv_seq} arrived")
            else:
                self._inbound.append(event)
                if kind == "http.disconnect" or kind == "websocket.disconnect":
                    gone = not local
        self._notify()
        if gone:  # the edge says the client left: send_data() gives up, even while it waits
            self.handle(fw.CLIENT_GONE, ClientGone(f"the client of {self.conn} went away"))

    def _gap(self, what: str) -> None:
        logger.warning("connection %s: events were lost in Redis (%s): was something evicted? "
                       "(see maxmemory-policy in the deployment docs)", self.conn, what)
        self.handle(fw.GAP, PeerLost(f"events of {self.conn} were lost in Redis: {what}"))
        self._notify()

    def _notify(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(True)

    async def _wait(self, timeout: float | None = None) -> bool:
        """Until something arrives (True), or ``timeout`` seconds pass first (False)."""
        waker: asyncio.Future[bool] = self.hub.loop.create_future()
        self._wakers.append(waker)
        if timeout is None:
            return await waker
        timer = self.hub.loop.call_later(timeout, _time_out, waker)
        try:
            return await waker
        finally:
            timer.cancel()

    async def receive(self, probe_after: float | None = None) -> Event:
        """The next event from the other side; PeerLost when it is gone. With ``probe_after``
        (seconds), a wait that long asks the other side whether entries were lost."""
        probes = None if probe_after is None else Backoff(probe_after, _PROBE_LIMIT)
        while not self._inbound:
            if self.failed is not None:
                raise self.failed
            if probes is None or not self.numbered or self.remote is None:
                await self._wait()
            elif not await self._wait(probes.next()):
                self.hub.send_aside(self.remote, self.conn,
                                    {"type": PROBE, "inbox": self.hub.inbox})
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
        seq = 0
        if self.numbered:
            seq = self.sent_seq = self.sent_seq + 1
        if self.ack_with is not None:
            ack, self.ack_with = self.ack_with, None
            self.held = True  # nothing more goes out until the acknowledgement is confirmed
            self.hub.send_events_acked(ack, self.remote, self.conn, events,
                                       seq).add_done_callback(self._acked)
            return
        future = self.hub.send_events(self.remote, self.conn, events, seq)
        future.add_done_callback(self._sent)

    def _acked(self, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self.handle(fw.FAILED, PeerLost(
                f"could not acknowledge {self.conn}: {error or 'cancelled'}"))
            return
        event = ACK_EVENTS.get(future.result(), fw.REAPED)
        self.handle(event, None if event == fw.ACKED else PeerLost(_NOT_ACKED[event].format(
            self.conn)))

    def _sent(self, future: asyncio.Future[None]) -> None:
        error = future.exception()
        if error is not None:
            logger.warning("connection %s: events lost: %s", self.conn, error)
            self.handle(fw.FAILED, PeerLost(
                f"could not send to the other side of {self.conn}: {error}"))


# Why a connection's first output did not go out, by the acknowledgement's answer.
_NOT_ACKED = {
    fw.REAPED: "{} was given back to its queue",
    fw.GIVEN_UP: "{} was given up by its edge at its deadline",
    fw.FULL: "the inbox of the other side of {} is full",
}


def _time_out(waker: asyncio.Future[bool]) -> None:
    if not waker.done():
        waker.set_result(False)
