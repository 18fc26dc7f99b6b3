"""The edge's metrics: each routed connection counted by route key, kind and status, timed, and
each failure counted by cause; served at the edge's own ``metrics_path``.

Nothing here runs while metrics are off: ``PathDistributor`` then calls the relay and opens a
plain ``Edge``. With ``metrics_path`` set it calls the relay through ``EdgeMeter.serving`` (the
status its client got, the whole time) and opens a ``MeteredEdge`` (the wait for a worker, the
failures by cause, and the open connections of its figures). Requests are counted in plain
Python and added to the metrics at each flush (``pending.py``): before a page is rendered, and
once a second, for the pages of the other processes of a gunicorn edge.

The status of a connection is the HTTP status its client got: that of the response, ``101``
for a WebSocket a worker accepted (or the status of its denial), ``none`` for a client that
left before any response. A WebSocket the edge could not give to a worker is accepted and
closed at once (1013, 1011 for worker_lost); it is counted with its cause's status (503, 502),
as an HTTP request would have been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from ..distributor.edge import Edge
from ..figures import CAUSES, STATUS_OF
from ..forwarding.peer import Peer
from ..typing import Event, Scope, Send
from . import edge_metrics_on, switch_on
from .exposition import CONTENT_TYPE, render
from .families import (
    DURATION_BUCKETS,
    EDGE_DURATION,
    EDGE_FAILURES,
    EDGE_OPEN,
    EDGE_QUEUE_WAIT,
    EDGE_REQUESTS,
    WAIT_BUCKETS,
    RouteLabels,
)
from .pending import PendingCounter, PendingHistogram, flush_all, on_flush

__all__ = ["EdgeMeter", "MeteredEdge", "edge_meter"]

Serve = Callable[..., Awaitable[None]]
KINDS = ("http", "websocket")
_FLUSH_EVERY = 1.0  # seconds: how far behind the page of another gunicorn process may be

# The connection being served in this task, so that a failure counted by the edge marks it.
_WATCHED: contextvars.ContextVar[_Watched | None] = contextvars.ContextVar(
    "channels_distributed_metered_connection", default=None)


class _Watched:
    """The server's ``send``, noting the status the client gets."""

    __slots__ = ("refused", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = "none"
        self.refused: str | None = None  # the edge failed it before any response

    def __call__(self, event: Event) -> Awaitable[None]:
        # Not a coroutine: the caller awaits the server's send itself (no frame of our own).
        kind = event["type"]
        if kind == "http.response.start" or kind == "websocket.http.response.start":
            self.status = str(event["status"])
        elif kind == "websocket.accept":
            self.status = "101"
        elif kind == "websocket.close" and self.status == "none":
            self.status = "403"  # closed before accepting: the server answers 403
        return self.send(event)


class _Route:
    """One route key's metrics, their children looked up once (``labels()`` takes a lock)."""

    __slots__ = ("duration", "failures", "label", "requests", "wait")

    def __init__(self, label: str) -> None:
        self.label = label
        self.requests: dict[tuple[str, str], PendingCounter] = {}
        self.duration = {kind: PendingHistogram(EDGE_DURATION.labels(label, kind),
                                                DURATION_BUCKETS) for kind in KINDS}
        self.wait = PendingHistogram(EDGE_QUEUE_WAIT.labels(label), WAIT_BUCKETS)
        # Every cause from the start: a rate reads 0, not "no data", until one happens.
        self.failures = {cause: EDGE_FAILURES.labels(label, cause) for cause in CAUSES}

    def ended(self, kind: str, status: str, seconds: float) -> None:
        counter = self.requests.get((kind, status))
        if counter is None:
            counter = self.requests[(kind, status)] = PendingCounter(
                EDGE_REQUESTS.labels(self.label, kind, status))
        counter.count += 1
        self.duration[kind].observe(seconds)

    def flush(self) -> None:
        for counter in self.requests.values():
            counter.flush()
        for histogram in self.duration.values():
            histogram.flush()
        self.wait.flush()


class EdgeMeter:
    """This process's edge metrics (one for every edge of the process)."""

    def __init__(self) -> None:
        self._labels = RouteLabels()
        self._routes: dict[str, _Route] = {}
        self.edges: weakref.WeakSet[Edge] = weakref.WeakSet()  # whose open connections count

    def route(self, key: str) -> _Route:
        route = self._routes.get(key)
        if route is None:
            label = self._labels(key)
            route = self._routes.get(label)
            if route is None:
                route = self._routes[label] = _Route(label)
            # Keys past the limit share the label's entry, uncached: the cache stays bounded.
        return route

    def serving(self, serve: Serve, kind: str) -> Serve:
        """``serve`` (``serve_http``, ``serve_websocket``) counted and timed."""
        async def metered(edge: Edge, key: str | None, scope: Scope, receive: Any,
                          send: Send) -> None:
            if key is None:  # refused before routing (a bad path): no route key to count
                await serve(edge, key, scope, receive, send)
                return
            started = perf_counter()
            watched = _Watched(send)
            token = _WATCHED.set(watched)
            try:
                await serve(edge, key, scope, receive, watched)
            finally:
                _WATCHED.reset(token)
                self.route(key).ended(kind, watched.refused or watched.status,
                                      perf_counter() - started)

        return metered

    def flush(self) -> None:
        """Add what was counted since the last flush to the metrics (``pending.py``)."""
        for route in self._routes.values():  # one per label: keys past the bound share one
            route.flush()
        EDGE_OPEN.set(sum(edge.figures.open for edge in list(self.edges)))

    def failed(self, key: str, cause: str) -> None:
        self.route(key).failures[cause].inc()
        watched = _WATCHED.get()
        if watched is not None and watched.status == "none":
            watched.refused = str(STATUS_OF[cause])

    async def answer(self, send: Send) -> None:
        """The metrics page (``metrics_path``): of every process of a gunicorn edge when
        ``PROMETHEUS_MULTIPROC_DIR`` is set, else of this one."""
        body = render(every_process=True)  # flushes this process's counts first
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", CONTENT_TYPE.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})


class MeteredEdge(Edge):
    """An ``Edge`` that times the wait for a worker and counts failures by cause."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meter = edge_meter()
        self.meter.edges.add(self)
        self._flushing: asyncio.Task[None] | None = None

    def start(self) -> None:
        super().start()
        self._flushing = self.hub.loop.create_task(self._flush_every_second())

    async def _flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            flush_all()

    async def close(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
        await super().close()
        flush_all()  # what this process counted last stays counted (a gunicorn edge's files)

    async def connect(self, key: str, scope: Scope, first: Event | None) -> Peer | None:
        started = perf_counter()
        peer = await super().connect(key, scope, first)
        if peer is not None:
            self.meter.route(key).wait.observe(perf_counter() - started)
        return peer

    def failed(self, key: str, cause: str, message: str, *args: object) -> None:
        super().failed(key, cause, message, *args)
        self.meter.failed(key, cause)


_meter: EdgeMeter | None = None


def edge_meter() -> EdgeMeter:
    """This process's edge metrics, switched on the first time (a ConfigurationError naming
    ``metrics_path`` when they cannot be: see ``metrics.switch_on``, ``serving_processes``)."""
    global _meter
    if _meter is None:
        switch_on("metrics_path")
        edge_metrics_on()
        _meter = EdgeMeter()
        on_flush(_meter.flush)
    return _meter
