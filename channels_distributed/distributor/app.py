"""The path distributor: an ASGI application that forwards each connection to a worker over Redis.

::

    app = create_path_distributor(host="localhost", port=6379, routes={
        "/api/([a-z-]+)": r"ASGI-\\1",
        "/": "ALL-WEBSITE-TRAFFIC",
    })

Run it under any ASGI server. Each HTTP request or WebSocket is matched against the routes (see
``protocol.routing``), then queued on its route key as a ``connect`` request; the first worker
that takes it acknowledges it and the connection's events flow both ways through the two
processes' inboxes (``protocol.envelope``, ``forwarding.peer``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ..conf import DistributorConfig
from ..exceptions import ConfigurationError
from ..responses import send_plain
from ..typing import Receive, Scope, Send
from .edge import Edge
from .relay import serve_http, serve_websocket

__all__ = ["PathDistributor", "create_path_distributor"]

logger = logging.getLogger(__name__)

# A decoded path with a control character (%00-%1F, %7F) is refused before routing: no route was
# written for one, and Python's ``$`` matches before a trailing newline, so ``^/x/(.*)$`` would
# route ``/x/foo%0a`` as if it were ``/x/foo``. isprintable() comes first: it is True for nearly
# every path and costs less than the search.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PATH = b"Bad Request: control characters in the path\n"



class PathDistributor:
    """ASGI 3 application forwarding HTTP and WebSocket connections to workers by path."""

    def __init__(self, routes: Mapping[str, str] | Iterable[tuple[str, str]], **options: Any):
        self.config = DistributorConfig.from_options(routes, **options)
        self._edges: dict[asyncio.AbstractEventLoop, Edge] = {}
        self._last: tuple[asyncio.AbstractEventLoop | None, Edge | None] = (None, None)
        # The paths this application answers itself (health probes, metrics): never routed.
        probes = {self.config.live_path: self._live, self.config.ready_path: self._ready}
        self._own: dict[str, Callable[[Send], Awaitable[None]]] = {
            path: answer for path, answer in probes.items() if path is not None}
        # What serves a routed connection: the relay itself, or with metrics on the relay
        # counted and timed (chosen once here: the hot path pays nothing while they are off).
        self._edge_type: type[Edge] = Edge
        self._serve_http: Callable[..., Awaitable[None]] = serve_http
        self._serve_websocket: Callable[..., Awaitable[None]] = serve_websocket
        if self.config.metrics_path is not None:
            self._meter(self.config.metrics_path)

    def _meter(self, path: str) -> None:
        from .. import metrics

        metrics.switch_on("metrics_path")  # before importing prometheus_client: its checks
        from ..metrics.edge import MeteredEdge, edge_meter

        meter = edge_meter()
        self._edge_type = MeteredEdge
        self._serve_http = meter.serving(serve_http, "http")
        self._serve_websocket = meter.serving(serve_websocket, "websocket")
        self._own[path] = meter.answer

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

    def _edge(self) -> Edge:
        loop = asyncio.get_running_loop()
        last_loop, edge = self._last
        if last_loop is loop and edge is not None:
            return edge
        edge = self._edges.get(loop)
        if edge is None:
            edge = self._edges[loop] = self._edge_type.open(self.config)
        self._last = (loop, edge)
        return edge

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                self._edge()
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                edge = self._edges.pop(asyncio.get_running_loop(), None)
                self._last = (None, None)
                if edge is not None:
                    await edge.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if self._own and path in self._own:
            await self._own[path](send)
            return
        if not path.isprintable() and _CONTROL.search(path):
            await send_plain(send, 400, _BAD_PATH)
            return
        key = self.config.routes.resolve(path)
        if key is None:
            await send_plain(send, 404, b"Not Found\n")
            return
        edge = self._edge()
        if edge.routing.active:  # an override in force (distributor/overrides.py)
            key = edge.routing.pick(key)
        await self._serve_http(edge, key, scope, receive, send)

    async def _live(self, send: Send) -> None:
        self._edge()  # started with the first probe when the server runs no lifespan
        await send_plain(send, 200, b"live\n")

    async def _ready(self, send: Send) -> None:
        if self._edge().ready:
            await send_plain(send, 200, b"ready\n")
        else:
            await send_plain(send, 503, b"not ready: Redis does not answer\n")

    def _websocket(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine of its own: the relay's is awaited directly, one frame less held by
        # every open WebSocket for its whole life.
        path = scope["path"]
        if not path.isprintable() and _CONTROL.search(path):
            return serve_websocket(self._edge(), None, scope, receive, send, refuse=400)
        key = self.config.routes.resolve(path)
        edge = self._edge()
        if key is not None and edge.routing.active:
            key = edge.routing.pick(key)
        return self._serve_websocket(edge, key, scope, receive, send)


def create_path_distributor(routes: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                            **options: Any) -> PathDistributor:
    """The seed API: ``create_path_distributor(host=..., port=..., routes={...})``."""
    if routes is None:
        raise ConfigurationError("routes", "no routes given",
                                 "pass routes={'/api/([a-z-]+)': r'API-\\1', ...}")
    return PathDistributor(routes, **options)
