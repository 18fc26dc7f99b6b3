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
import logging
from typing import Any, Protocol

from ..exceptions import ClientGone, PeerLost
from ..logs import Throttle
from ..protocol.envelope import (
    ACK,
    EXPIRED,
    PROBE,
    PROBED,
    RESET,
    VERSION,
    ack_event,
)
from ..protocol.forwarding import (
    FAILURES,
    Action,
    Event,
    Forwarding,
    Output,
    UnexpectedEvent,
)
from ..typing import Event as Message
from .events import ACK_EVENTS, CONTROL, NOT_ACKED
from .hub import Hub
from .probes import Probes

__all__ = ["ACK_EVENTS", "Owner", "Peer", "Watcher", "open_peer"]

logger = logging.getLogger(__name__)
# Under overload every request may end so: one line every 10 s says it, with the count.
_LATE = Throttle(logger, 10.0)

# The members used on every request, bound once: an enum member looked up on its class costs
# a descriptor call each time.
(_A_ABORT, _A_ACCEPTED, _A_CLOSE_PEER, _A_DISCARD, _A_FLUSH, _A_FLUSH_NOW, _A_SEND_EXPIRED,
 _A_SEND_FINAL, _A_SEND_RESET, _A_UNWATCH, _A_WATCH) = (
    Action.ABORT, Action.ACCEPTED, Action.CLOSE_PEER, Action.DISCARD, Action.FLUSH,
    Action.FLUSH_NOW, Action.SEND_EXPIRED, Action.SEND_FINAL, Action.SEND_RESET, Action.UNWATCH,
    Action.WATCH)
(_E_ACKED, _E_BROKEN, _E_CLIENT_GONE, _E_DEADLINE, _E_FAILED, _E_FLUSHED, _E_GAP,
 _E_PEER_GONE, _E_REAPED) = (
    Event.ACKED, Event.BROKEN, Event.CLIENT_GONE, Event.DEADLINE, Event.FAILED, Event.FLUSHED,
    Event.GAP, Event.PEER_GONE, Event.REAPED)
(_O_ACK_FIRST, _O_DROP, _O_HOLD) = (
    Output.ACK_FIRST, Output.DROP, Output.HOLD)

# Posted out of their stream (unnumbered): shared, only ever read.
_RESET = {"type": RESET}
_EXPIRED = {"type": EXPIRED}


class Owner(Protocol):
    """Who carries out a peer's owner actions: the edge, or a worker's connection."""

    def act(self, peer: Peer, action: Action) -> None: ...


class Watcher(Protocol):
    """Who fails a peer whose other process went away (``liveness.Watch``)."""

    def add(self, process: str, peer: Peer) -> None: ...

    def remove(self, process: str, peer: Peer) -> None: ...

    async def close(self) -> None: ...


def open_peer(hub: Hub, conn: str, window: int, *, remote: str | None = None,
              machine: Forwarding | None = None, owner: Owner | None = None,
              watch: Watcher | None = None, version: int = VERSION,
              ack_target: tuple[str, bytes, str] | None = None) -> Peer:
    """A peer for ``conn`` in ``hub``; ``owner.act(peer, action)`` carries out the owner's
    actions, ``watch`` (a ``liveness.Watch``) watches the other process once it is known;
    ``version``: the protocol version the other side speaks; ``ack_target``: (processing list,
    request, given-up mark) of a worker's request, for a first output that acknowledges it."""
    if machine is None:
        machine = Forwarding(hub.side, window)
    peer = Peer(hub, conn, machine, remote, owner, watch, version, ack_target)
    hub.add_peer(peer)
    return peer


class Peer:
    """One side of one forwarded connection: the I/O shell of its ``Forwarding`` machine."""

    def __init__(self, hub: Hub, conn: str, machine: Forwarding, remote: str | None,
                 owner: Owner | None, watch: Watcher | None, version: int = VERSION,
                 ack_target: tuple[str, bytes, str] | None = None) -> None:
        self.hub = hub
        self.conn = conn
        self.machine = machine
        self.owner = owner
        self.watch = watch
        self.remote = remote
        self.remote_id: str | None = None  # the other process, once known (for the watch)
        self.ack_target = ack_target
        self.failure: BaseException | None = None  # what waiters raise once it failed
        self.final: Message | None = None  # the owner's last word (SEND_FINAL)
        self._out: list[Message] = []
        self._scheduled = False
        # Arrived, not received yet; None while empty (an idle WebSocket keeps no buffer).
        self._inbound: list[Message] | None = None
        self._wakers: list[asyncio.Future[bool]] = []
        # Only the side that does not know its remote yet (the distributor) waits for cd.accept.
        self.accepted: asyncio.Future[None] | None = (
            hub.loop.create_future() if remote is None else None)
        # Entries of each direction are numbered (protocol 2+): a lost one breaks the stream.
        self.numbered = version >= 2
        self.sent_seq = 0  # entries this side sent
        self.recv_seq = 0  # entries that arrived from the other side, in order

    # The machine -----------------------------------------------------------------------------
    def handle(self, event: Event, error: BaseException | None = None,
               message: Message | None = None, now: float = 0.0) -> None:
        """Feed ``event`` to the machine and carry out its actions, in order (one call: this
        runs several times per request). An event the machine has no row for is a defect:
        logged, and the connection fails (``_E_BROKEN``), wherever it came from."""
        try:
            actions = self.machine.handle(event, now)
        except UnexpectedEvent as exc:
            logger.error("connection %s: %s; failing it", self.conn, exc)
            if event is not _E_BROKEN:
                self.handle(_E_BROKEN, PeerLost(f"connection {self.conn} broke: {exc}"))
            return
        for action in actions:  # the common ones first
            if action is _A_FLUSH:
                if self._out:
                    self._schedule()
            elif action is _A_FLUSH_NOW:
                self.flush()
            elif action is _A_CLOSE_PEER:
                self.hub.close_peer(self)
                self.owner = None  # no cycle with the owner: freed by reference counting
            elif action is _A_WATCH:
                if self.watch is not None:
                    self.watch.add(str(self.remote_id), self)
            elif action is _A_UNWATCH:
                if self.watch is not None:  # unwatched: removes nothing
                    self.watch.remove(str(self.remote_id), self)
            elif action is _A_SEND_FINAL:
                if self.final is not None:
                    self.post(self.final)
            elif action is _A_DISCARD:
                self._out.clear()
            elif action is _A_ACCEPTED:
                self._accepted(message or {})
            elif action in FAILURES:
                failure = FAILURES[action]
                self._end_with(error or failure.error(failure.message.format(self.conn)))
            else:
                self._act(action, message)

    def _act(self, action: Action, message: Message | None) -> None:
        """The rarer actions: telling the other side, or the owner's."""
        if action is _A_SEND_RESET:
            self.hub.stray(self.conn, [message or {}])
        elif action is _A_ABORT:
            if self.remote is not None:
                self.hub.send_aside(self.remote, self.conn, _RESET)
        elif action is _A_SEND_EXPIRED:
            _LATE.log(logging.INFO, "given_up", "", "connection %s will not run: its edge gave "
                      "it up at its deadline", self.conn)
            if self.remote is not None:
                self.hub.send_aside(self.remote, self.conn, _EXPIRED)
        elif self.owner is not None:
            self.owner.act(self, action)
        else:  # pragma: no cover - owner actions come only while it owns the peer
            raise RuntimeError(f"connection {self.conn}: nobody carries out {action.value!r}")

    def tick(self, now: float) -> None:
        """The machine's timer, on the caller's clock."""
        if self.machine.expired(now):
            self.handle(_E_DEADLINE, None, None, now)

    def _accepted(self, message: Message) -> None:
        self.remote = str(message.get("inbox"))
        self.remote_id = str(message.get("worker"))
        if self.accepted is not None and not self.accepted.done():
            self.accepted.set_result(None)
            self.accepted = None  # its one waiter holds it; an idle connection need not

    # Incoming --------------------------------------------------------------------------------
    def feed(self, events: list[Message], seq: int = 0, *, local: bool = False) -> None:
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
            elif kind in CONTROL:
                self.handle(CONTROL[kind], None, event)
            elif kind == PROBE:
                # It travels behind what the prober sent before it: its count says whether
                # this side lost any of that, too.
                self._check_count(event, "probe")
                if self.remote is not None:
                    self.hub.send_aside(self.remote, self.conn,
                                        {"type": PROBED, "sent": self.sent_seq})
            elif kind == PROBED:
                self._check_count(event, "answer")
            else:
                inbound = self._inbound
                if inbound is None:
                    self._inbound = [event]
                else:
                    inbound.append(event)
                if kind == "http.disconnect" or kind == "websocket.disconnect":
                    gone = not local
        self._notify()
        if gone:  # the edge says the client left: send_data() gives up, even while it waits
            self.handle(_E_CLIENT_GONE, ClientGone(f"the client of {self.conn} went away"))

    def _check_count(self, event: Message, what: str) -> None:
        sent = event.get("sent")
        if isinstance(sent, int) and sent > self.recv_seq:
            self._gap(f"the other side's {what} counts {sent} entries, {self.recv_seq} arrived")

    def _gap(self, what: str) -> None:
        logger.warning("connection %s: events were lost in Redis (%s): was something evicted? "
                       "(see maxmemory-policy in the deployment docs)", self.conn, what)
        self.handle(_E_GAP, PeerLost(f"events of {self.conn} were lost in Redis: {what}"))
        self._notify()

    def _notify(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(True)

    def _wait(self, timeout: float | None = None) -> asyncio.Future[bool]:
        """True once something arrives, False after ``timeout`` s: no coroutine frame held."""
        loop = self.hub.loop
        waker: asyncio.Future[bool] = loop.create_future()
        self._wakers.append(waker)
        if timeout is not None:  # cancelled with the waker, too (its waiter was cancelled)
            timer = loop.call_later(timeout, _time_out, waker)
            waker.add_done_callback(lambda _: timer.cancel())
        return waker

    async def receive(self, probe_after: float | None = None) -> Message:
        """The next event from the other side; PeerLost when it is gone. With ``probe_after``
        (seconds), a wait that long asks the other side whether entries were lost."""
        probes = None if probe_after is None else Probes(probe_after, self.hub.loop.time())
        while True:
            event = self.receive_nowait()
            if event is not None:
                return event
            if self.failure is not None:
                raise self.failure
            await self._wait_or_probe(probes)

    def _wait_or_probe(self, probes: Probes | None) -> asyncio.Future[bool]:
        """A wait for something to arrive; with ``probes``, a stream quiet for a pause asks the
        other side how many entries it sent (an answer says what was lost; a reset, that it
        forgot this connection). Other wake-ups (the other side's own probes) do not restart it."""
        if probes is None or not self.numbered or self.remote is None:
            return self._wait()
        now = self.hub.loop.time()
        if probes.due <= now:
            probes.next(now)
            self.hub.send_aside(self.remote, self.conn, {"type": PROBE, "inbox": self.hub.inbox,
                                                         "sent": self.sent_seq})
        return self._wait(probes.due - now)

    def receive_nowait(self) -> Message | None:  # the buffer goes with its last event
        inbound = self._inbound
        if inbound is None:
            return None
        if len(inbound) == 1:
            self._inbound = None
            return inbound[0]
        return inbound.pop(0)

    def process_gone(self, error: BaseException) -> None:
        """The other process went away (``liveness.Watch`` says so)."""
        self.handle(_E_PEER_GONE, error)

    def _end_with(self, error: BaseException) -> None:
        """The connection failed: whoever waits on it gets ``error``."""
        if self.failure is None:
            self.failure = error
        if self.accepted is not None and not self.accepted.done():
            self.accepted.set_exception(error)
            self.accepted.exception()  # retrieved: nobody may be waiting any more
        self._notify()

    def push_failed(self, future: asyncio.Future[Any]) -> None:  # a push's done callback
        """The connection fails if the push ``future`` did."""
        if future.cancelled():
            self.handle(_E_FAILED, PeerLost(f"sending for {self.conn} was cancelled"))
        elif future.exception() is not None:
            self.handle(_E_FAILED, future.exception())

    # Outgoing --------------------------------------------------------------------------------
    def post(self, event: Message) -> None:
        """Queue an event for the next flush (same loop turn), as the machine's state lets it:
        it may wait (nothing may leave yet) or vanish (the other side needs nothing more)."""
        output = self.machine.output
        if output is _O_DROP:
            return
        self._out.append(event)
        if output is not _O_HOLD:
            self._schedule()

    async def send_data(self, event: Message, probe_after: float | None = None) -> bool:
        """Queue a data event once the window has room. False if the peer is gone. With
        ``probe_after``, a wait for credit that long probes the other side: its credit (or
        its last word) may have been lost."""
        probes = None if probe_after is None else Probes(probe_after, self.hub.loop.time())
        while True:
            if self.failure is not None:
                return False
            if self.machine.spend():
                break
            await self._wait_or_probe(probes)
        self.post(event)
        return True

    def consumed(self, count: int = 1) -> None:
        """Give ``count`` units of credit back to the other side."""
        if self._out and self._out[-1]["type"] == ACK:
            self._out[-1]["n"] += count
            return
        self.post(ack_event(count))

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.hub.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what is queued as one entry, if the machine's state lets it leave."""
        self._scheduled = False
        if not self._out or self.remote is None:
            return
        output = self.machine.output
        if output is _O_HOLD:
            return
        if output is _O_DROP:
            self._out.clear()
            return
        events, self._out = self._out, []
        seq = 0
        if self.numbered:
            seq = self.sent_seq = self.sent_seq + 1
        if output is _O_ACK_FIRST:
            if self.ack_target is None:  # pragma: no cover - a worker's peers have one
                raise RuntimeError(f"connection {self.conn}: nothing to acknowledge")
            self.hub.send_events_acked(self.ack_target, self.remote, self.conn, events,
                                       seq).add_done_callback(self._acked)
            self.handle(_E_FLUSHED)
            return
        future = self.hub.send_events(self.remote, self.conn, events, seq)
        future.add_done_callback(self._sent)

    def _acked(self, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self.handle(_E_FAILED, PeerLost(
                f"could not acknowledge {self.conn}: {error or 'cancelled'}"))
            return
        event = ACK_EVENTS.get(future.result(), _E_REAPED)
        self.handle(event, None if event is _E_ACKED else PeerLost(
            NOT_ACKED[event].format(self.conn)))

    def _sent(self, future: asyncio.Future[None]) -> None:
        error = future.exception()
        if error is not None:
            logger.warning("connection %s: events lost: %s", self.conn, error)
            self.handle(_E_FAILED, PeerLost(
                f"could not send to the other side of {self.conn}: {error}"))


def _time_out(waker: asyncio.Future[bool]) -> None:
    if not waker.done():
        waker.set_result(False)
