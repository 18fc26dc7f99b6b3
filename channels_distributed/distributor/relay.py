"""The distributor's side of forwarded connections: relay each one's events, both ways.

``serve_http`` and ``serve_websocket`` relay one connection between the ASGI server and the
worker that accepted it (``Edge.connect``). The hot path is kept lean on purpose (hello world
pays for every future and task here): a request waits for its worker in one await, and the
client -> worker direction of an HTTP request whose body is complete gets a task only if the
response is not at hand at once (it only matters then: to tell the application the client went
away).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..conf import DistributorConfig
from ..exceptions import ClientGone, PeerLost
from ..forwarding.peer import Peer
from ..protocol.envelope import CLOSE, split_body
from ..protocol.forwarding import FAILURES, Action
from ..protocol.forwarding import Event as Happened
from ..responses import deny_websocket, send_plain
from ..typing import Event, Receive, Scope, Send
from .edge import Edge, WorkerSilent

__all__ = ["serve_http", "serve_websocket"]

logger = logging.getLogger(__name__)

# What the client gets when its connection fails (the machines' failures: protocol.forwarding).
_SILENT = FAILURES[Action.FAIL_SILENT]
_LOST = FAILURES[Action.FAIL_LOST]
_NO_WORKER = FAILURES[Action.FAIL_NO_WORKER]
_CLIENT_GONE, _COMPLETE = Happened.CLIENT_GONE, Happened.COMPLETE  # bound once: used per request


class _Upstream:
    """The client -> worker direction of one connection, in a task started when needed."""

    def __init__(self, peer: Peer, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.peer = peer
        self.factory = factory
        self.task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = self.peer.hub.loop.create_task(self.factory())
            self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("reading from the client failed: %r", task.exception())
        self.peer.handle(_CLIENT_GONE)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


Down = Callable[[Peer, Send, Callable[[], None]], Awaitable[None]]


async def _relay(peer: Peer, send: Send, down: Down, up: Callable[[], Coroutine[Any, Any, None]],
                 eager: bool) -> None:
    """Relay worker -> client here and client -> worker in a task; either end ends both.

    ``down`` calls its third argument before it waits for the worker: that starts the other
    direction when ``eager`` did not.
    """
    upstream = _Upstream(peer, up)
    if eager:
        upstream.start()
    try:
        await down(peer, send, upstream.start)
    except ClientGone:
        pass
    except PeerLost:
        raise
    except OSError:
        pass  # the server's send() raised: the client left (ASGI 2.4); finish() tells the worker
    finally:
        upstream.stop()


async def _next(peer: Peer, waiting: Callable[[], None], probe_after: float | None = None
                ) -> Event:
    event = peer.receive_nowait()
    if event is None:
        waiting()
        event = await peer.receive(probe_after)
    return event


async def _forever() -> None:
    # The other direction reports a lost peer; this one just waits to be cancelled.
    await asyncio.get_running_loop().create_future()


# HTTP -------------------------------------------------------------------------------------------

async def serve_http(edge: Edge, key: str, scope: Scope, receive: Receive, send: Send) -> None:
    config = edge.config
    first = await _first_body(config, scope, receive)
    if first is not None and first["type"] == "http.disconnect":
        return
    try:
        peer = await edge.connect(key, scope, first)
    except WorkerSilent:
        await send_plain(send, _SILENT.status or 502,
                         b"Bad Gateway: the worker that took this request never answered\n")
        return
    if peer is None:
        await send_plain(send, config.no_worker_status,
                    b"No worker is available for this request; retry later\n",
                    config.retry_after)
        return
    body_done = first is not None and not first.get("more_body")
    try:
        await _relay(peer, send, functools.partial(_http_down, probe_after=config.redis_timeout),
                     lambda: _http_up(peer, receive, config, body_done),
                     eager=not body_done)
    finally:
        edge.finish(peer, key, {"type": "http.disconnect"})


async def _first_body(config: DistributorConfig, scope: Scope, receive: Receive
                      ) -> Event | None:
    """The first request event when it is small and at hand: it travels with the request.

    With ``Expect: 100-continue`` nothing is read before a worker accepted, so the client is
    told to send its body only once someone will read it.
    """
    length: int | None = None
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            return None
        if name == b"transfer-encoding":
            return None
        if name == b"content-length" and value.strip().isdigit():
            length = int(value)
    if length is not None and length > config.inline_body:
        return None
    return await receive()


async def _http_down(peer: Peer, send: Send, waiting: Callable[[], None], *,
                     probe_after: float) -> None:
    # A response that stops coming for ``probe_after`` seconds: were its entries lost in Redis?
    started = False
    try:
        while True:
            event = await _next(peer, waiting, probe_after)
            kind = event["type"]
            if kind == "http.response.start":
                started = True
                await send(event)
            elif kind == "http.response.body":
                if not event.get("more_body", False):
                    peer.handle(_COMPLETE)  # the worker needs no credit or disconnect now
                    await send(event)
                    return
                await send(event)
                peer.consumed()
            elif kind == CLOSE:
                if not started:
                    await send_plain(send, 500, b"Internal Server Error\n")
                    return
                raise PeerLost("the application ended before finishing its response")
    except ClientGone:
        raise
    except PeerLost:
        if started:
            raise  # the ASGI server aborts the connection
        await send_plain(send, _LOST.status or 502,
                         b"Bad Gateway: the worker serving this request went away\n")


async def _http_up(peer: Peer, receive: Receive, config: DistributorConfig,
                   body_done: bool) -> None:
    while not body_done:
        event = await receive()
        if event["type"] == "http.disconnect":
            peer.post(event)
            return
        for piece in split_body(event, config.max_chunk):
            if not await peer.send_data(piece, config.redis_timeout):
                await _forever()
        body_done = not event.get("more_body", False)
    while (await receive())["type"] != "http.disconnect":
        pass
    peer.post({"type": "http.disconnect"})


# WebSocket --------------------------------------------------------------------------------------

async def serve_websocket(edge: Edge, key: str | None, scope: Scope, receive: Receive,
                          send: Send, refuse: int = 404) -> None:
    """Relay a WebSocket to a worker on ``key``; with no key, refuse it with ``refuse``."""
    if (await receive())["type"] != "websocket.connect":
        return
    if key is None:
        await deny_websocket(scope, send, refuse,
                             b"Not Found\n" if refuse == 404 else b"Bad Request\n", 1008)
        return
    try:
        peer = await edge.connect(key, scope, None)
    except WorkerSilent:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": _SILENT.close_code,
                    "reason": "worker went away"})
        return
    if peer is None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": _NO_WORKER.close_code,
                    "reason": "no worker available"})
        return
    try:
        await _relay(peer, send, _ws_down,
                     lambda: _ws_up(peer, receive, edge.config.redis_timeout), eager=True)
    finally:
        edge.finish(peer, key, {"type": "websocket.disconnect", "code": 1006, "reason": ""})


async def _ws_down(peer: Peer, send: Send, waiting: Callable[[], None]) -> None:
    accepted = False
    try:
        while True:
            # _next() inlined: one coroutine less held by every idle WebSocket.
            event = peer.receive_nowait()
            if event is None:
                waiting()
                event = await peer.receive()
            kind = event["type"]
            if kind == CLOSE:
                peer.handle(_COMPLETE)
                code = 1011 if event.get("error") else 1000
                await send({"type": "websocket.close", "code": code})
                return
            if kind == "websocket.close":
                peer.handle(_COMPLETE)  # the worker's app already knows it closed
            await send(event)
            if kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.send":
                peer.consumed()
            elif kind == "websocket.close" or (kind == "websocket.http.response.body"
                                               and not event.get("more_body")):
                return
            # Not kept while waiting for the next one: an idle WebSocket would hold its last
            # message (and its text) for as long as it stays idle.
            del event
    except ClientGone:
        raise
    except PeerLost:
        if not accepted:
            await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": _LOST.close_code,
                    "reason": "worker went away"})


async def _ws_up(peer: Peer, receive: Receive, probe_after: float) -> None:
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            peer.post(event)
            return
        if event["type"] == "websocket.receive" and not await peer.send_data(event,
                                                                             probe_after):
            await _forever()
        del event  # not kept while waiting for the next one (see _ws_down)
