"""One forwarded connection inside a worker.

``Connection`` acknowledges its ``connect`` request before running the application (so a request
a reaper gave back to the queue is never run twice), then gives the application ASGI 3
``receive``/``send`` over a ``Peer``: data events wait for flow-control credit, events leave
batched per loop turn, and ``cd.close`` tells the distributor the application returned (unless
it completed an HTTP response, which ends the distributor's side).
It is the owner of its peer's ``protocol.forwarding`` machine (worker side): Redis's answer to
the acknowledgement, the client's disconnect and the application's return go in as events, and
it carries out the actions that are its own (post the accept, run the application, tell the
distributor a request will never run).

Once the client is gone, the application's ``send()`` raises ``ClientGone`` (an ``OSError``, as
ASGI spec 2.4 asks), except for the answer to a WebSocket handshake, which is dropped (the next
``receive()`` says ``websocket.disconnect``); an application that then ends with an exception is
logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import logging

from ..exceptions import ClientGone, PeerLost, ProtocolError, RedisUnavailable
from ..forwarding.events import ACK_EVENTS
from ..forwarding.hub import Hub, now_ms
from ..forwarding.peer import Peer, open_peer
from ..logs import Throttle
from ..protocol.envelope import EXPIRED, Connect, close_event, is_data, split_body
from ..protocol.forwarding import Action, Forwarding, Side
from ..protocol.forwarding import Event as Happened
from ..transport.queues import RouteQueue
from ..typing import Event, Scope
from .context import WorkerContext

__all__ = ["Connection", "tell_expired"]

logger = logging.getLogger(__name__)
# Under overload every request may end so: one line every 10 s says it, with the count.
_LATE = Throttle(logger, 10.0)

# Enum members used per request, bound once (looked up on their class, each costs a
# descriptor call).
(_DROP, _SEND_ACCEPT, _ACKED, _DEADLINE, _END, _FAILED, _GIVEN_UP, _OPTIMISTIC, _REAPED, _TAKE,
 _WORKER) = (
    Action.DROP, Action.SEND_ACCEPT, Happened.ACKED, Happened.DEADLINE, Happened.END,
    Happened.FAILED, Happened.GIVEN_UP, Happened.OPTIMISTIC, Happened.REAPED, Happened.TAKE,
    Side.WORKER)


def tell_expired(hub: Hub, connect: Connect, why: str = "it reached this worker after its "
                 "deadline") -> None:
    """Tell the distributor that ``connect`` will never run: it answers 503 at once, instead
    of waiting for an accept that never comes and then answering 502. (Not told, Redis being
    unreachable: the distributor finds out at its deadline as before.)"""
    _LATE.log(logging.INFO, "late", why, "not running %s %s: %s", connect.scope["type"],
              connect.scope.get("path"), why)
    hub.send_aside(connect.reply, connect.conn, _EXPIRED)


class Connection:
    """Runs the application for one ``connect`` request."""

    def __init__(self, context: WorkerContext, route: RouteQueue, raw: bytes,
                 connect: Connect) -> None:
        self.context = context
        self.route = route
        self.raw = raw  # the queue entry, until acknowledged (see _acknowledged)
        self.connect = connect
        self.kind = connect.scope["type"]
        self.scope: Scope = connect.scope  # decoded for this connection alone: no copy
        self.scope["state"] = dict(context.lifespan_state)
        self._first: Event | None = None  # what the first receive() returns, if set
        self.gone = False  # the client went away
        self.answered = False  # the application answered the WebSocket handshake
        self.told_gone = False  # send() raised ClientGone to the application
        self.done = False  # the response (or the socket) is complete
        self.ran = False  # the application was called (for the worker's figures)
        self.error = False  # and raised
        # ``gone``, ``answered``, ``told_gone`` and ``done`` are what the application was told
        # (the ASGI contract); the connection's lifecycle is its peer's machine.
        route = self.route
        peer = self.peer = open_peer(
            context.hub, connect.conn, context.window, remote=connect.reply,
            machine=Forwarding(_WORKER, context.window), owner=self, watch=context.watch,
            version=connect.version,
            ack_target=(route.processing, raw, route.state(connect.conn)))
        peer.remote_id = connect.origin  # the distributor, watched while this runs
        if self.kind == "websocket":
            self._first = {"type": "websocket.connect"}
        elif connect.body is not None:  # else the body arrives as events
            self._first = {"type": "http.request", "body": connect.body,
                           "more_body": connect.more_body}

    def act(self, peer: Peer, action: Action) -> None:
        """The machine's worker actions that are this connection's to carry out."""
        if action is _SEND_ACCEPT:
            peer.post(self.context.accept_event)
        elif action is _DROP:
            self.route.drop(self.raw)
        else:  # pragma: no cover - the table gives a connection no other owner action
            raise RuntimeError(f"a worker connection cannot carry out {action.value!r}")

    async def run(self) -> None:
        peer = self.peer
        if now_ms() > self.connect.deadline_ms:  # never run after its deadline
            peer.handle(_DEADLINE)
            return
        if self._optimistic():
            # The accept goes out with the app's first output, not before: the first flush
            # runs right after the app's first step, so whatever the app sent by then (a whole
            # small response, usually) travels with the accept and the acknowledgement; an app
            # that is still working is accepted at once all the same.
            peer.handle(_OPTIMISTIC)
        else:
            peer.handle(_TAKE)
            try:
                answer = await self.route.ack(self.raw, self.connect.conn)
            except RedisUnavailable as exc:
                logger.warning("cannot acknowledge %s: %s", self.connect.conn, exc)
                peer.handle(_FAILED, exc)
            except asyncio.CancelledError:  # the node is stopping: nothing may leak
                peer.handle(_FAILED)
                raise
            else:
                event = ACK_EVENTS.get(answer, _REAPED)
                if event is _ACKED and now_ms() > self.connect.deadline_ms:
                    # Acknowledged, but too late to run: as if the edge had given it up (it
                    # does, or did: it answers 503 once told).
                    event = _GIVEN_UP
                self._acknowledged()
                peer.handle(event)
        if not peer.machine.runs_app:
            return  # given back (another worker runs it) or given up (never runs)
        error = self.ran = True
        try:
            await self.context.app(self.scope, self.receive, self.send)
            error = False
        except Exception as exc:
            if self.told_gone:  # it ended of the OSError send() raised: no error of its own
                logger.debug("application %s ended with %r after the client of %s %s left",
                             self.context.app_name, exc, self.kind, self.scope.get("path"))
            else:
                self.error = True
                logger.exception("application %s raised serving %s %s", self.context.app_name,
                                 self.kind, self.scope.get("path"))
        finally:
            if self.kind != "http" or not self.done:
                peer.final = _CLOSED_WITH_ERROR if error else _CLOSED
            # Else the response went out in full: the edge finished with its final body and
            # forgot the connection (as it sends no disconnect after it), so a ``cd.close``
            # would cost a push and a delivery that nobody reads.
            peer.handle(_END)

    def _acknowledged(self) -> None:
        """Redis answered the acknowledgement: the queue entry is needed no more (only a
        request never taken is dropped, and only the first output of an optimistic one
        acknowledges it), so a WebSocket does not keep it for as long as it stays open."""
        self.raw = b""
        self.peer.ack_target = None

    def _optimistic(self) -> bool:
        """Idempotent HTTP with its whole body at hand may start before its acknowledgement.

        Its first output then acknowledges it atomically (one Redis step instead of a round trip
        before the app starts). In the rare case a reaper gave it back to the queue meanwhile,
        this worker's output is never delivered, so the client sees one response only; running
        such a request twice is what HTTP allows for idempotent methods.
        """
        connect = self.connect
        return (self.kind == "http" and connect.idempotent and connect.body is not None
                and not connect.more_body and connect.reply is not None
                and self.context.hub.same_shard(self.route.processing, connect.reply))

    # The application's receive and send ------------------------------------------------------
    async def receive(self) -> Event:
        first = self._first
        if first is not None:
            self._first = None
            return first
        try:
            # A request body that stops coming for a while: were its entries lost in Redis?
            event = await self.peer.receive(
                self.context.probe_after if self.kind == "http" and not self.gone else None)
        except PeerLost:
            event = self._disconnect(1006)
        if is_data(event):
            self.peer.consumed()
        elif event["type"] in ("http.disconnect", "websocket.disconnect"):
            self.gone = True  # the machine heard it from the edge (Peer.feed), or ended it
        return event

    def shutdown(self, code: int) -> None:
        """The worker is stopping: a WebSocket is closed at once with ``code`` (1012, service
        restart: its client reconnects, through the edge, to another worker), and its
        application gets ``websocket.disconnect`` with that code first, so a consumer runs its
        ``disconnect()`` (its ``group_discard``) while the channel layer still works. HTTP
        requests are left to finish."""
        if self.kind != "websocket" or self.gone or self.done:
            return
        self.peer.post({"type": "websocket.close", "code": code, "reason": "service restart"})
        self.gone = True  # from now on its send() raises OSError, as for any client gone
        self.peer.feed([{"type": "websocket.disconnect", "code": code, "reason": ""}], local=True)

    def _disconnect(self, code: int) -> Event:
        self.gone = True
        if self.kind == "http":
            return {"type": "http.disconnect"}
        return {"type": "websocket.disconnect", "code": code, "reason": ""}

    async def send(self, event: Event) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError(f"send() takes an event dict with a 'type', got {event!r}")
        if self.done:
            return  # the response is complete: ignored, as servers do
        kind = event["type"]
        if self.gone or self.peer.failure is not None:
            if self.kind == "websocket" and not self.answered and kind in _ANSWERS:
                self.answered = True  # the next receive() says websocket.disconnect
                return
            raise self._gone()
        if kind == "http.response.body" and self.kind == "http":
            for piece in split_body(_body_event(event), self.context.max_chunk):
                if not await self.peer.send_data(piece, self.context.probe_after):
                    raise self._gone()
            if not event.get("more_body", False):
                self._complete({"type": "http.disconnect"})
        elif kind == "websocket.send" and self.kind == "websocket":
            if not await self.peer.send_data(dict(event), self.context.probe_after):
                raise self._gone()
        elif kind == "http.response.start" and self.kind == "http":
            self.peer.post(_start_event(event))
        else:
            if kind not in _OTHER_EVENTS[self.kind]:
                # Refused here, where the application's developer reads the log, rather than
                # by the edge's server.
                raise ProtocolError(_misplaced(self.context.app_name, self.kind, kind))
            self.peer.post(dict(event))
            self.answered = True
            if kind == "websocket.close":
                self._complete({"type": "websocket.disconnect",
                                "code": int(event.get("code", 1000)),
                                "reason": str(event.get("reason") or "")})

    def _gone(self) -> ClientGone:
        self.told_gone = True
        return ClientGone(f"the client of {self.kind} {self.scope.get('path')} went away")

    def _complete(self, then: Event) -> None:
        # Later receive() calls return the disconnect at once, as an ASGI server's would.
        self.done = True
        self.peer.feed([then], local=True)


# Posted events are only read (packed) once sent, so these can be shared.
_CLOSED = close_event(False)
_CLOSED_WITH_ERROR = close_event(True)
_EXPIRED = {"type": EXPIRED}


# A WebSocket application's answers to the handshake: dropped for a client that left before it.
_ANSWERS = frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"})

# The events an application may send besides those send() handles first; per scope type.
_OTHER_EVENTS = {
    "http": frozenset(),
    "websocket": frozenset({"websocket.accept", "websocket.close",
                            "websocket.http.response.start", "websocket.http.response.body"}),
}
_EXPECTED = {
    "http": ("an HTTP", "http.response.start and http.response.body"),
    "websocket": ("a WebSocket", "websocket.accept, websocket.send, websocket.close, or "
                  "websocket.http.response.start/body to refuse it with an HTTP response"),
}


def _misplaced(app: str, scope_type: str, kind: str) -> str:
    connection, allowed = _EXPECTED[scope_type]
    return f"application {app} sent {kind!r} on {connection} connection; it may send {allowed}"


def _start_event(event: Event) -> Event:
    status = event.get("status")
    if not isinstance(status, int):
        raise ProtocolError(f"http.response.start needs an int status, got {status!r}")
    headers = [[bytes(name), bytes(value)] for name, value in event.get("headers", ())]
    return {**event, "headers": headers}


def _body_event(event: Event) -> Event:
    body = event.get("body", b"")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"http.response.body needs bytes, got {type(body).__name__}")
    return {"type": "http.response.body", "body": bytes(body),
            "more_body": bool(event.get("more_body", False))}
