"""The path distributor: an ASGI application that forwards each connection to a worker over Redis.

::

    app = create_path_distributor(host="localhost", port=6379, routes={
        "/api/([a-z-]+)": r"ASGI-\\1",
        "/": "ALL-WEBSITE-TRAFFIC",
    })

Run it under any ASGI server. Each HTTP request or WebSocket is matched against the routes (see
``protocol.routing``), then queued on its route key as a ``connect`` request; the first worker
that takes it acknowledges it and the connection's events flow both ways through the two
processes' inboxes (``protocol.envelope``, ``transport.streams``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .conf import HostSpec, LayerConfig, parse_hosts
from .exceptions import ChannelFull, ConfigurationError, PeerLost, RedisUnavailable
from .protocol.envelope import CLOSE, IDEMPOTENT_METHODS, Connect, encode_connect, split_body
from .protocol.routing import RouteTable
from .transport.liveness import Presence, Watch
from .transport.streams import Hub, Peer, now_ms

__all__ = ["DistributorConfig", "PathDistributor", "connection_settings",
           "create_path_distributor"]

logger = logging.getLogger("channels_distributed.distributor")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ACCEPT_GRACE = 0.25  # a worker drops requests past their deadline; wait a little longer
_SWEEP_INTERVAL = 0.05


class _NoWorker(PeerLost):
    """No worker accepted the connection in time."""


class _ClientGone(PeerLost):
    """The client went away: the connection ends here, quietly."""


def connection_settings(*, host: str | None = None, port: int | str | None = None,
                        db: int | str | None = None, password: str | None = None,
                        url: str | None = None, hosts: Any = None, layer: Any = None,
                        prefix: str | None = None) -> tuple[tuple[HostSpec, ...], str]:
    """Redis servers and key prefix from the same forms the channel layer accepts."""
    given = [name for name, value in (("host/port", host or port), ("url", url),
                                      ("hosts", hosts), ("layer", layer)) if value]
    if len(given) > 1:
        raise ConfigurationError(given[1], f"given together with {given[0]}",
                                 "point at Redis one way only")
    if layer is not None:
        config: LayerConfig = layer.config
        return config.hosts, prefix or config.prefix
    if url:
        specs = parse_hosts([url])
    elif hosts:
        specs = parse_hosts(hosts)
    else:
        specs = parse_hosts([_host_dict(host, port, db, password)])
    if db is not None and (url or hosts):
        raise ConfigurationError("db", "given with url/hosts", "put the database in the URL")
    return specs, LayerConfig.from_kwargs(hosts=[], prefix=prefix or "asgi").prefix


def _host_dict(host: str | None, port: int | str | None, db: int | str | None,
               password: str | None) -> dict[str, Any]:
    try:
        number = int(port) if port is not None else 6379
        database = int(db) if db is not None else 0
    except (TypeError, ValueError):
        raise ConfigurationError("port", f"expected a port number and a database number, got "
                                 f"port={port!r} db={db!r}", "give e.g. port=6379, db=0") from None
    return {"host": host or "localhost", "port": number, "db": database, "password": password}


def _positive(name: str, value: Any, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise ConfigurationError(name, f"expected a positive number, got {value!r}",
                                 f"set {name} to a number above zero")
    return value


@dataclass(frozen=True)
class DistributorConfig:
    """The distributor's resolved settings."""

    routes: RouteTable
    hosts: tuple[HostSpec, ...]
    prefix: str = "asgi"
    worker_timeout: float = 5.0
    no_worker_status: int = 503
    retry_after: int = 1
    inline_body: int = 64 * 1024
    max_chunk: int = 64 * 1024
    window: int = 16
    queue_capacity: int = 10_000
    redis_timeout: float = 1.0

    def __post_init__(self) -> None:
        for name in ("worker_timeout", "redis_timeout"):
            _positive(name, getattr(self, name))
        for name in ("inline_body", "max_chunk", "window", "queue_capacity", "retry_after"):
            _positive(name, getattr(self, name), integer=True)
        status = self.no_worker_status
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ConfigurationError("no_worker_status", f"expected an HTTP error status, got "
                                     f"{status!r}", "use e.g. 503 or 504")


class PathDistributor:
    """ASGI 3 application forwarding HTTP and WebSocket connections to workers by path."""

    def __init__(self, routes: Mapping[str, str] | Iterable[tuple[str, str]], **options: Any):
        connection = {k: options.pop(k) for k in ("host", "port", "db", "password", "url",
                                                  "hosts", "layer", "prefix") if k in options}
        hosts, prefix = connection_settings(**connection)
        try:
            self.config = DistributorConfig(RouteTable(routes), hosts, prefix, **options)
        except TypeError as exc:
            raise ConfigurationError("options", str(exc),
                                     "see PathDistributor's settings") from None
        self._hubs: dict[asyncio.AbstractEventLoop, _Edge] = {}
        self._last: tuple[asyncio.AbstractEventLoop | None, _Edge | None] = (None, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise ValueError(f"the distributor cannot serve scope type {kind!r}")

    def _edge(self) -> _Edge:
        loop = asyncio.get_running_loop()
        last_loop, edge = self._last
        if last_loop is loop and edge is not None:
            return edge
        edge = self._hubs.get(loop)
        if edge is None:
            edge = self._hubs[loop] = _Edge(self.config)
        self._last = (loop, edge)
        return edge

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                self._edge()
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                edge = self._hubs.pop(asyncio.get_running_loop(), None)
                self._last = (None, None)
                if edge is not None:
                    await edge.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self.config.routes.resolve(scope["path"])
        if key is None:
            await plain(send, 404, b"Not Found\n")
            return
        await serve_http(self._edge(), key, scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self.config.routes.resolve(scope["path"])
        await serve_websocket(self._edge(), key, scope, receive, send)


class _Edge:
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
        # Connections waiting for a worker, by deadline; one sweeper instead of a timer each.
        self._waiting: dict[Peer, float] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def _await_worker(self, peer: Peer, timeout: float) -> None:
        self._waiting[peer] = asyncio.get_running_loop().time() + timeout
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            await asyncio.sleep(_SWEEP_INTERVAL)
            now = loop.time()
            for peer, deadline in list(self._waiting.items()):
                if deadline <= now:
                    del self._waiting[peer]
                    peer.fail(_NoWorker())

    async def connect(self, key: str, scope: Scope, first: dict[str, Any] | None
                      ) -> Peer | None:
        """Queue the connection on ``key``; the peer once a worker accepted, else None."""
        config, hub = self.config, self.hub
        peer = hub.open_peer(self._new_id(), config.window, held=True)
        deadline = now_ms() + int(config.worker_timeout * 1000)
        request = Connect(conn=peer.conn, scope=scope, reply=hub.inbox, origin=hub.id,
                          deadline_ms=deadline, idempotent=scope.get("method") in
                          IDEMPOTENT_METHODS, body=None if first is None else first["body"],
                          more_body=bool(first and first.get("more_body")))
        entry, queue = encode_connect(request), hub.keys.queue(key)
        ttl = int(max(config.worker_timeout * 2, 60) * 1000)
        self._await_worker(peer, config.worker_timeout + _ACCEPT_GRACE)
        try:
            await hub.push(queue, entry, config.queue_capacity, ttl)
            await peer.accepted
        except _NoWorker:
            logger.warning("no worker took %s on route key %s within %g s", scope.get("path"),
                           key, config.worker_timeout)
            self._withdraw(queue, entry)
        except (RedisUnavailable, ChannelFull, PeerLost) as exc:
            logger.warning("cannot queue %s on %s: %s", scope.get("path"), key, exc)
        else:
            self._waiting.pop(peer, None)
            peer.release()
            self.watch.add(str(peer.remote_id), peer)
            return peer
        finally:
            self._waiting.pop(peer, None)
        hub.close_peer(peer)
        return None

    def _withdraw(self, queue: str, entry: bytes) -> None:
        # Keep the queue clean; a worker would drop it for its deadline anyway.
        link = self.hub.shard_for(queue).connected_link
        if link is not None:
            link.call("LREM", queue, 1, entry).add_done_callback(
                lambda f: f.cancelled() or f.exception())

    def finish(self, peer: Peer) -> None:
        if peer.remote_id is not None:
            self.watch.remove(peer.remote_id, peer)
        self.hub.close_peer(peer)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
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


def create_path_distributor(routes: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                            **options: Any) -> PathDistributor:
    """The seed API: ``create_path_distributor(host=..., port=..., routes={...})``."""
    if routes is None:
        raise ConfigurationError("routes", "no routes given",
                                 "pass routes={'/api/([a-z-]+)': r'API-\\1', ...}")
    return PathDistributor(routes, **options)



# Relaying one connection ------------------------------------------------------------------------

async def serve_http(edge: _Edge, key: str, scope: Scope, receive: Receive, send: Send) -> None:
    config = edge.config
    first = await _first_body(config, scope, receive)
    if first is not None and first["type"] == "http.disconnect":
        return
    peer = await edge.connect(key, scope, first)
    if peer is None:
        await plain(send, config.no_worker_status,
                    b"No worker is available for this request; retry later\n",
                    config.retry_after)
        return
    body_done = first is not None and not first.get("more_body")
    try:
        await _race(peer, _http_down(peer, send),
                    _http_up(peer, receive, config.max_chunk, body_done))
    finally:
        edge.finish(peer)


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


async def _race(peer: Peer, down: Awaitable[None], up: Awaitable[None]) -> None:
    """Relay worker -> client here and client -> worker in a task; either end ends both."""
    task = asyncio.ensure_future(up)

    def client_side_ended(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("reading from the client failed: %r", task.exception())
        peer.fail(_ClientGone("the client went away"))

    task.add_done_callback(client_side_ended)
    try:
        await down
    except _ClientGone:
        pass
    finally:
        task.cancel()


async def _http_down(peer: Peer, send: Send) -> None:
    started = False
    try:
        while True:
            event = await peer.receive()
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


async def _forever() -> None:
    # The other direction reports a lost peer; this one just waits to be cancelled.
    await asyncio.get_running_loop().create_future()


async def serve_websocket(edge: _Edge, key: str | None, scope: Scope, receive: Receive,
                          send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    if key is None:
        await _reject(scope, send)
        return
    peer = await edge.connect(key, scope, None)
    if peer is None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013, "reason": "no worker available"})
        return
    try:
        await _race(peer, _ws_down(peer, send), _ws_up(peer, receive))
    finally:
        edge.finish(peer)


async def _reject(scope: Scope, send: Send) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "websocket.http.response.body", "body": b"Not Found\n"})
    else:
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403


async def _ws_down(peer: Peer, send: Send) -> None:
    accepted = False
    try:
        while True:
            event = await peer.receive()
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
