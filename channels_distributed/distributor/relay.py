"""The distributor's side of forwarded connections: queue each one, then relay its events.

``Edge`` is the distributor's transport in one event loop (hub, presence, the watch of workers);
``serve_http`` and ``serve_websocket`` relay one connection between the ASGI server and the
worker that accepted it. The hot path is kept lean on purpose (hello world pays for every
future and task here): a request waits for its worker in one await, and the client -> worker
direction of an HTTP request whose body is complete gets a task only if the response is not
at hand at once (it only matters then: to tell the application the client went away).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .exceptions import ChannelFull, PeerLost, RedisUnavailable, ReplyError
from .protocol.envelope import CLOSE, IDEMPOTENT_METHODS, STATE_TTL_MS, pack_connect, split_body
from .transport.liveness import Presence, Watch
from .transport.queues import run_script
from .transport.resp import ConnectionLost
from .transport.streams import Hub, Peer, Unserved, now_ms
from .transport.writer import Script

if TYPE_CHECKING:  # pragma: no cover
    from .distributor import DistributorConfig

__all__ = ["Edge", "plain", "serve_http", "serve_websocket"]

logger = logging.getLogger("channels_distributed.distributor")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# A worker drops requests past their deadline (and says so: cd.expired); wait a little longer.
_ACCEPT_GRACE = 0.25
_SWEEP_INTERVAL = 0.05
# How long an accept may still take once a worker acknowledged the request at the deadline.
_LATE_ACCEPT = 5.0
# KEYS: queue, state; ARGV: entry, state ttl_ms. 1: withdrawn from the queue, never taken;
# 0: a worker had taken it: it is marked given up, so that worker's acknowledgement fails if it
# has not happened yet (if it has, the worker's accept is on its way).
_GIVE_UP = Script("""
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then return 1 end
redis.call('SET', KEYS[2], 'c', 'PX', ARGV[2])
return 0
""")


class _NoWorker(PeerLost):
    """No worker accepted the connection in time."""


class _WorkerSilent(PeerLost):
    """A worker had taken the request by its deadline, then never answered."""


class _ClientGone(PeerLost):
    """The client went away: the connection ends here, quietly."""


class Edge:
    """The distributor's transport in one event loop: hub, presence, watch of workers."""

    def __init__(self, config: DistributorConfig) -> None:
        self.config = config
        self.hub = Hub(config.hosts, config.prefix, "d", retry_window=config.redis_timeout)
        self.hub.start()
        self.presence = Presence(self.hub)
        self.presence.start()
        self.watch = Watch(self.hub)
        # Connection ids: unique per edge process (a random prefix) and cheap (a counter).
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:10]
        self._queues: dict[str, str] = {}  # route key -> its queue's Redis key
        self._timeout_ms = int(config.worker_timeout * 1000)
        self._queue_ttl_ms = int(max(config.worker_timeout * 2, 60) * 1000)
        # Connections waiting for a worker, by deadline; one sweeper instead of a timer each.
        self._waiting: dict[Peer, float] = {}
        # Their requests (queue, state key, entry) until given up at the deadline.
        self._requests: dict[Peer, tuple[str, str, bytes]] = {}
        self._giving_up: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def _queue(self, key: str) -> str:
        queue = self._queues.get(key)
        if queue is None:
            if len(self._queues) > 10_000:  # templates can expand to many keys: stay bounded
                self._queues.clear()
            queue = self._queues[key] = self.hub.keys.queue(key)
        return queue

    def _await_worker(self, peer: Peer, timeout: float) -> None:
        self._waiting[peer] = self.hub.loop.time() + timeout
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self.hub.loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            await asyncio.sleep(_SWEEP_INTERVAL)
            now = loop.time()
            for peer, deadline in list(self._waiting.items()):
                if deadline > now:
                    continue
                del self._waiting[peer]
                request = self._requests.pop(peer, None)
                if request is None:  # taken before the deadline, yet no accept since
                    peer.fail(_WorkerSilent("the worker that took the request never answered"))
                    continue
                self._spawn(self._give_up(peer, *request))

    def _spawn(self, coroutine: Any) -> None:
        task = self.hub.loop.create_task(coroutine)
        self._giving_up.add(task)
        task.add_done_callback(self._giving_up.discard)

    async def _withdraw(self, queue: str, state: str, entry: bytes) -> int:
        """Withdraw the request from its queue (1), or mark it given up if a worker took it (0).
        Redis unreachable: 1 (no worker can answer through it either)."""
        try:
            link = await asyncio.wait_for(self.hub.shard_for(queue).link(), 1.0)
            return int(await asyncio.wait_for(
                run_script(link, _GIVE_UP, [queue, state], [entry, STATE_TTL_MS]), 2.0))
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError, asyncio.TimeoutError):
            return 1

    async def _give_up(self, peer: Peer, queue: str, state: str, entry: bytes) -> None:
        """At the deadline: withdraw the request, or, if a worker took it already, mark it given
        up so that it cannot be acknowledged from now on, and wait a little longer for the
        accept of a worker that acknowledged it in time. A request the client is told 503 about
        is never run; one a worker holds is answered by it (or with 502), or with 503 when that
        worker says it took it too late to run it (``cd.expired``)."""
        if await self._withdraw(queue, state, entry):
            peer.fail(_NoWorker())
        elif not peer.failed:
            # Taken by a worker: its accept may be on the way; wait for it a while longer.
            self._waiting[peer] = self.hub.loop.time() + _LATE_ACCEPT
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = self.hub.loop.create_task(self._sweep())

    async def connect(self, key: str, scope: Scope, first: dict[str, Any] | None
                      ) -> Peer | None:
        """Queue the connection on ``key``; the peer once a worker accepted, else None."""
        config, hub = self.config, self.hub
        peer = hub.open_peer(self._new_id(), config.window, held=True)
        accepted = peer.accepted
        if accepted is None:  # pragma: no cover - a peer opened without a remote has one
            raise RuntimeError("a peer waiting for its worker has no accept future")
        entry = pack_connect(peer.conn, scope, hub.inbox, hub.id, now_ms() + self._timeout_ms,
                             scope.get("method") in IDEMPOTENT_METHODS,
                             None if first is None else first["body"],
                             bool(first and first.get("more_body")))
        queue = self._queue(key)
        self._requests[peer] = (queue, hub.keys.state(key, peer.conn), entry)
        self._await_worker(peer, config.worker_timeout + _ACCEPT_GRACE)
        # A failed push fails the peer, so the request waits in one await (one wakeup), not
        # for the push's reply and then for the accept.
        hub.push(queue, entry, config.queue_capacity, self._queue_ttl_ms).add_done_callback(
            peer.fail_on_error)
        ok = expired = False
        try:
            await accepted
            ok = True
        except (_NoWorker, Unserved) as exc:
            # Unserved: a worker took it after its deadline, dropped it and said so; it is in
            # no list any more, so there is nothing to withdraw.
            expired = isinstance(exc, Unserved)
            logger.warning("no worker took %s on route key %s within %g s", scope.get("path"),
                           key, config.worker_timeout)
        except _WorkerSilent:
            logger.warning("the worker that took %s on %s never answered", scope.get("path"), key)
            raise  # not "no worker": one has it, and failed it
        except (RedisUnavailable, ChannelFull, PeerLost) as exc:
            logger.warning("cannot queue %s on %s: %s", scope.get("path"), key, exc)
        finally:
            # Also when the server cancels us (client gone, shutdown): nothing may leak, and a
            # request nobody waits for any more is withdrawn (or can no longer be acknowledged).
            self._waiting.pop(peer, None)
            request = self._requests.pop(peer, None)
            if not ok:
                hub.close_peer(peer)
                if request is not None and not expired:
                    self._spawn(self._withdraw(*request))
        if not ok:
            return None
        peer.release()
        self.watch.add(str(peer.remote_id), peer)
        return peer

    def finish(self, peer: Peer, disconnect: dict[str, Any]) -> None:
        """The connection ended here. If the exchange was not complete (the client left in the
        middle, the server failed to send), the worker's application is told, so it never
        waits forever on a connection that is gone."""
        if peer.remote_id is not None:
            self.watch.remove(peer.remote_id, peer)
        if not peer.finished and peer.failed is None:
            peer.post(disconnect)
        self.hub.close_peer(peer)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._giving_up):
            task.cancel()
        await self.watch.close()
        await self.presence.stop()
        await self.hub.close()


async def plain(send: Send, status: int, body: bytes, retry_after: int | None = None) -> None:
    """A small plain-text response."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
        self.peer.fail(_ClientGone("the client went away"))

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
    except _ClientGone:
        pass
    finally:
        upstream.stop()


async def _next(peer: Peer, waiting: Callable[[], None]) -> dict[str, Any]:
    event = peer.receive_nowait()
    if event is None:
        waiting()
        event = await peer.receive()
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
    except _WorkerSilent:
        await plain(send, 502, b"Bad Gateway: the worker that took this request never answered\n")
        return
    if peer is None:
        await plain(send, config.no_worker_status,
                    b"No worker is available for this request; retry later\n",
                    config.retry_after)
        return
    body_done = first is not None and not first.get("more_body")
    try:
        await _relay(peer, send, _http_down,
                     lambda: _http_up(peer, receive, config.max_chunk, body_done),
                     eager=not body_done)
    finally:
        edge.finish(peer, {"type": "http.disconnect"})


async def _first_body(config: DistributorConfig, scope: Scope, receive: Receive
                      ) -> dict[str, Any] | None:
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


async def _http_down(peer: Peer, send: Send, waiting: Callable[[], None]) -> None:
    started = False
    try:
        while True:
            event = await _next(peer, waiting)
            kind = event["type"]
            if kind == "http.response.start":
                started = True
                await send(event)
            elif kind == "http.response.body":
                if not event.get("more_body", False):
                    peer.finish_output()  # the worker needs no credit or disconnect any more
                    await send(event)
                    return
                await send(event)
                peer.consumed()
            elif kind == CLOSE:
                if not started:
                    await plain(send, 500, b"Internal Server Error\n")
                    return
                raise PeerLost("the application ended before finishing its response")
    except _ClientGone:
        raise
    except PeerLost:
        if started:
            raise  # the ASGI server aborts the connection
        await plain(send, 502, b"Bad Gateway: the worker serving this request went away\n")


async def _http_up(peer: Peer, receive: Receive, max_chunk: int, body_done: bool) -> None:
    while not body_done:
        event = await receive()
        if event["type"] == "http.disconnect":
            peer.post(event)
            return
        for piece in split_body(event, max_chunk):
            if not await peer.send_data(piece):
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
        await _reject(scope, send, refuse)
        return
    try:
        peer = await edge.connect(key, scope, None)
    except _WorkerSilent:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1011, "reason": "worker went away"})
        return
    if peer is None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013, "reason": "no worker available"})
        return
    try:
        await _relay(peer, send, _ws_down, lambda: _ws_up(peer, receive), eager=True)
    finally:
        edge.finish(peer, {"type": "websocket.disconnect", "code": 1006, "reason": ""})


async def _reject(scope: Scope, send: Send, status: int) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b"Not Found\n" if status == 404 else b"Bad Request\n"
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403


async def _ws_down(peer: Peer, send: Send, waiting: Callable[[], None]) -> None:
    accepted = False
    try:
        while True:
            event = await _next(peer, waiting)
            kind = event["type"]
            if kind == CLOSE:
                peer.finish_output()
                code = 1011 if event.get("error") else 1000
                await send({"type": "websocket.close", "code": code})
                return
            if kind == "websocket.close":
                peer.finish_output()  # the worker's app already knows it closed
            await send(event)
            if kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.send":
                peer.consumed()
            elif kind == "websocket.close" or (kind == "websocket.http.response.body"
                                               and not event.get("more_body")):
                return
    except _ClientGone:
        raise
    except PeerLost:
        if not accepted:
            await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1011, "reason": "worker went away"})


async def _ws_up(peer: Peer, receive: Receive) -> None:
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            peer.post(event)
            return
        if event["type"] == "websocket.receive" and not await peer.send_data(event):
            await _forever()
