"""One forwarded connection inside a worker.

``Connection`` acknowledges its ``connect`` request before running the application (so a request
a reaper gave back to the queue is never run twice), then gives the application ASGI 3
``receive``/``send`` over a ``Peer``: data events wait for flow-control credit, events leave
batched per loop turn, and ``cd.close`` tells the distributor the application returned.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from ..exceptions import PeerLost, ProtocolError, RedisUnavailable
from ..protocol.envelope import EXPIRED, Connect, close_event, is_data, split_body
from ..transport.liveness import Watch
from ..transport.queues import GIVEN_UP, OURS, REAPED, RouteQueue
from ..transport.streams import Hub
from ..typing import Event, Scope
from .context import WorkerContext

__all__ = ["Connection", "tell_expired"]

logger = logging.getLogger("channels_distributed.worker")



def tell_expired(hub: Hub, connect: Connect) -> None:
    """Tell the distributor that ``connect`` will never run: it answers 503 at once, instead
    of waiting for an accept that never comes and then answering 502."""
    logger.info("not running %s %s: it reached this worker after its deadline",
                connect.scope["type"], connect.scope.get("path"))
    hub.send_events(connect.reply, connect.conn, [_EXPIRED]).add_done_callback(_consume)


def _consume(future: asyncio.Future[None]) -> None:
    # Not told (Redis unreachable): the distributor finds out at its deadline as before.
    if not future.cancelled() and future.exception() is not None:
        logger.warning("could not tell the distributor about an expired request: %s",
                       future.exception())


class Connection:
    """Runs the application for one ``connect`` request."""

    def __init__(self, context: WorkerContext, route: RouteQueue, raw: bytes,
                 connect: Connect) -> None:
        self.context = context
        self.route = route
        self.raw = raw
        self.connect = connect
        self.kind = connect.scope["type"]
        self.scope: Scope = connect.scope  # decoded for this connection alone: no copy
        self.scope["state"] = dict(context.lifespan_state)
        self._pending: collections.deque[Event] = collections.deque()
        self.gone = False  # the client went away
        self.done = False  # the response (or the socket) is complete
        self.peer = context.hub.open_peer(connect.conn, context.window, remote=connect.reply,
                                          held=True)
        self.peer.post(context.accept_event)
        if self.kind == "websocket":
            self._pending.append({"type": "websocket.connect"})
        elif connect.body is not None:  # else the body arrives as events
            self._pending.append({"type": "http.request", "body": connect.body,
                                  "more_body": connect.more_body})

    async def run(self) -> None:
        hub, watch = self.context.hub, self.context.watch
        if self._optimistic(hub):
            await self._run_optimistic(hub, watch)
            return
        try:
            try:
                answer = await self.route.ack(self.raw, self.connect.conn)
            except RedisUnavailable as exc:
                logger.warning("cannot acknowledge %s: %s", self.connect.conn, exc)
                answer = REAPED
            if answer == GIVEN_UP:
                tell_expired(hub, self.connect)  # taken before its deadline, too late to run
            if answer != OURS:
                return  # REAPED: given back to the queue by a reaper, another worker runs it
            self.peer.release()
            watch.add(self.connect.origin, self.peer)
            await self._run_app()
        finally:
            watch.remove(self.connect.origin, self.peer)
            hub.close_peer(self.peer)

    def _optimistic(self, hub: Hub) -> bool:
        """Idempotent HTTP with its whole body at hand may start before its acknowledgement.

        Its first output then acknowledges it atomically (one Redis step instead of a round trip
        before the app starts). In the rare case a reaper gave it back to the queue meanwhile,
        this worker's output is never delivered, so the client sees one response only; running
        such a request twice is what HTTP allows for idempotent methods.
        """
        connect = self.connect
        return (self.kind == "http" and connect.idempotent and connect.body is not None
                and not connect.more_body and connect.reply is not None
                and hub.same_shard(self.route.processing, connect.reply))

    async def _run_optimistic(self, hub: Hub, watch: Watch) -> None:
        peer = self.peer
        peer.ack_with = (self.route.processing, self.raw,
                         self.route.keys.state(self.route.route, self.connect.conn))
        # The accept goes out with the app's first output, not before: the first flush runs
        # right after the app's first step, so whatever the app sent by then (a whole small
        # response, usually) travels with the accept and the acknowledgement; an app that is
        # still working is accepted at once all the same.
        peer.release()
        watch.add(self.connect.origin, peer)
        try:
            await self._run_app()
        finally:
            watch.remove(self.connect.origin, peer)
            hub.close_peer(peer)

    async def _run_app(self) -> None:
        error = True
        try:
            await self.context.app(self.scope, self.receive, self.send)
            error = False
        except Exception:
            logger.exception("application %s raised serving %s %s", self.context.app_name,
                             self.kind, self.scope.get("path"))
        finally:
            self.peer.post(_CLOSED_WITH_ERROR if error else _CLOSED)

    # The application's receive and send ------------------------------------------------------
    async def receive(self) -> Event:
        if self._pending:
            return self._pending.popleft()
        try:
            event = await self.peer.receive()
        except PeerLost:
            event = self._disconnect(1006)
        if is_data(event):
            self.peer.consumed()
        elif event["type"] in ("http.disconnect", "websocket.disconnect"):
            self.gone = True
            self.peer.fail(PeerLost("the client went away"))
        return event

    def _disconnect(self, code: int) -> Event:
        self.gone = True
        if self.kind == "http":
            return {"type": "http.disconnect"}
        return {"type": "websocket.disconnect", "code": code, "reason": ""}

    async def send(self, event: Event) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError(f"send() takes an event dict with a 'type', got {event!r}")
        if self.gone or self.done:
            return  # the client is gone or the response is complete: ignored, as servers do
        kind = event["type"]
        if kind == "http.response.body" and self.kind == "http":
            for piece in split_body(_body_event(event), self.context.max_chunk):
                if not await self.peer.send_data(piece):
                    return
            if not event.get("more_body", False):
                self._complete({"type": "http.disconnect"})
        elif kind == "websocket.send" and self.kind == "websocket":
            await self.peer.send_data(dict(event))
        elif kind == "http.response.start" and self.kind == "http":
            self.peer.post(_start_event(event))
        else:
            if kind not in _OTHER_EVENTS[self.kind]:
                # Refused here, where the application's developer reads the log, rather than
                # by the edge's server.
                raise ProtocolError(_misplaced(self.context.app_name, self.kind, kind))
            self.peer.post(dict(event))
            if kind == "websocket.close":
                self._complete({"type": "websocket.disconnect",
                                "code": int(event.get("code", 1000)),
                                "reason": str(event.get("reason") or "")})

    def _complete(self, then: Event) -> None:
        # Later receive() calls return the disconnect at once, as an ASGI server's would.
        self.done = True
        self.peer.feed([then])


# Posted events are only read (packed) once sent, so these can be shared.
_CLOSED = close_event(False)
_CLOSED_WITH_ERROR = close_event(True)
_EXPIRED = {"type": EXPIRED}


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
