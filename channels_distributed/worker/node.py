"""``Node``: a worker that takes connections from route keys and runs an application for each.

::

    Node(host="localhost", port="6379", cls=ASGIApp, key="ASGI-testing").run()

The application is ASGI 3, ASGI 2 class-style (``cls(scope)`` then ``await inst(receive, send)``)
or a legacy ``consumer(message)``; auto-detected, or set with ``interface=``. Connections run
concurrently up to ``concurrency``; at the limit the node stops taking new ones so other workers
get them. ``run()`` blocks (uvloop, SIGTERM/SIGINT drain gracefully: no new connections, in-flight
ones finish within ``grace`` seconds); ``await node.serve()`` embeds it in a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..conf import NodeConfig
from ..endpoints import Handler, Reply, serve_endpoints
from ..exceptions import ConfigurationError, ProtocolError, RedisUnavailable, ReplyError
from ..figures import WorkerFigures
from ..forwarding.hub import Hub, now_ms
from ..interfaces import adapt
from ..lifespan import Lifespan
from ..loop import close_loop, new_loop, serving_gc
from ..protocol import forwarding as fw
from ..protocol.envelope import EXPIRED, VersionMismatch, accept_event, decode_connect
from ..transport.backoff import Backoff
from ..transport.eviction import warn_if_evicting
from ..transport.liveness import Presence, Watch
from ..transport.queues import RouteQueue
from ..transport.resp import ConnectionLost
from ..transport.turns import let_woken_write
from .channels import ChannelService, layer_for
from .connection import Connection, tell_expired
from .context import WorkerContext
from .reconcile import Recent
from .spread import Routes

if TYPE_CHECKING:
    from ..metrics.worker import WorkerMeter

__all__ = ["Node"]

logger = logging.getLogger(__name__)

# At most this many requests per take. Small batches keep the pipeline moving: the worker's
# first responses leave while the edge still reads the next requests, instead of whole convoys
# passing from stage to stage while the others idle (64 left a quarter of a 2-core machine idle
# under load and served ~15% fewer requests/s than 16).
_MAX_TAKE = 16
# A BLMOVE answered this fast (one round trip) found the queue non-empty: take the rest in
# batches. Measured with perf_counter: uvloop's loop.time() only moves once a millisecond.
_QUEUE_WAS_FULL = 0.00015
# The close code of WebSockets a stopping worker closes (RFC 6455 section 7.4.1 via IANA: service
# restart): clients reconnect, and the edge gives them to another worker.
_RESTART = 1012
# After a take link was dropped, this many looks at the processing list: a blocking take Redis
# had not answered yet may still run once Redis resumes, and moves a request there that nobody
# would serve (the second look comes after one more round trip, once Redis has run it).
_RECONCILE_LOOKS = 2


class Node:
    """A worker process serving one or more route keys."""

    def __init__(self, app: Any = None, *, cls: Any = None, consumer: Any = None,
                 key: str | None = None, keys: Iterable[str] | None = None,
                 channels: Iterable[str] = (), channel_layer: Any = None,
                 **options: Any) -> None:
        """``options``: where Redis is (``url=``, ``hosts=``...) and the settings of
        ``NodeConfig`` by their field names (``concurrency``, ``grace``...), each defaulting to
        its field's default."""
        given = [a for a in (app, cls, consumer) if a is not None]
        if len(given) != 1:
            raise ConfigurationError("app", f"expected exactly one of app=, cls=, consumer=, got "
                                     f"{len(given)}", "pass the application once")
        if consumer is not None and options.get("interface", "auto") == "auto":
            options["interface"] = "legacy"
        self.config = NodeConfig.from_options(key=key, keys=keys, channels=channels, **options)
        self.app = adapt(given[0], self.config.interface)
        self.app_name = _describe(given[0])  # named in the log lines about the application
        self._channel_layer = channel_layer
        self.hub: Hub | None = None
        self.watch: Watch | None = None
        self._context: WorkerContext | None = None  # what its connections see of the node
        self.lifespan_state: dict[str, Any] = {}
        self.served = 0
        self.figures: WorkerFigures | None = None  # set once serving: the process id is known
        self._presence: Presence | None = None
        # Connections running, by task; and the requests taken lately (to tell a request a
        # dropped link took from one this node already ran).
        self._active: dict[asyncio.Task[None], Connection] = {}
        self._recent = Recent()
        self._room = asyncio.Event()
        self._stopping: asyncio.Event | None = None
        self._meter: WorkerMeter | None = None  # Prometheus metrics (metrics_bind), else None
        if self.config.metrics_bind is not None:
            from .. import metrics

            metrics.switch_on("--metrics-bind", summed=False)  # checks, before the import
            from ..metrics.worker import worker_meter

            self._meter = worker_meter()

    # Running -----------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain and return."""
        loop = new_loop()
        asyncio.set_event_loop(loop)
        try:
            with serving_gc():  # this process is ours: cyclic garbage collected less often
                loop.run_until_complete(self.serve(handle_signals=True))
        finally:
            close_loop(loop)
            asyncio.set_event_loop(None)

    def stop(self) -> None:
        """Ask the node to stop taking connections and drain (safe from a signal handler)."""
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self, handle_signals: bool = False) -> None:
        """Serve until ``stop()``; then finish in-flight connections within ``grace``."""
        self._stopping = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        if handle_signals:
            self._install_signals()
        config = self.config
        lifespan = Lifespan(self.app, config.lifespan, self.lifespan_state,
                            config.lifespan_timeout, switch_off="lifespan='off'")
        await lifespan.startup()
        service = None
        if config.channels:
            layer = self._channel_layer or layer_for(config.target)
            service = ChannelService(self.app, config.channels, layer)
            service.start()
        hub = self.hub = Hub(config.target.hosts, config.target.prefix, side=fw.Side.WORKER,
                             retry_window=config.redis_timeout)
        figures = self.figures = WorkerFigures(hub.id, "worker", concurrency=config.concurrency,
                                               channels=config.channels)
        for key in config.keys:  # listed from the start, before anything was taken there
            figures.route(key)
        if self._meter is not None:
            self._meter.watch(figures)
        endpoints = await self._endpoints()
        hub.start()
        self.watch = Watch(hub)
        self._context = WorkerContext(
            hub=hub, watch=self.watch, app=self.app, app_name=self.app_name,
            window=config.window, max_chunk=config.max_chunk,
            accept_event=accept_event(hub.id, hub.inbox), probe_after=config.redis_timeout,
            lifespan_state=self.lifespan_state)
        routes = Routes(hub, config.keys, self, lambda route, looks: self._take_loop(
            route, presence, looks), _MAX_TAKE, _RECONCILE_LOOKS)
        presence = self._presence = Presence(hub, refresh=self._upkeep(routes),
                                             card=figures.card)
        presence.start()
        routes.start()
        checked = asyncio.ensure_future(warn_if_evicting(hub.topology))
        announced = asyncio.ensure_future(self._announce(presence))
        try:
            await self._stopping.wait()
        finally:
            checked.cancel()
            announced.cancel()
            figures.state = "draining"
            await self._drain(routes.queues(), await routes.stop(), presence, service)
            await lifespan.shutdown()
            for server in endpoints:
                server.close()
            if self._meter is not None:
                self._meter.forget(figures)

    async def _announce(self, presence: Presence) -> None:
        """Say the worker serves once Redis answered (its lease is held), not before."""
        await presence.present.wait()
        if self.figures is not None:
            self.figures.state = "serving"
        if self.config.keys:
            logger.info("worker %s serving route key(s) %s", self._hub.id,
                        ", ".join(self.config.keys))

    async def _endpoints(self) -> list[asyncio.AbstractServer]:
        """The health probes' server (``health_bind``): /live while this loop turns, /ready
        only while the lease is held and the worker is not stopping; and the metrics'
        (``metrics_bind``): /metrics. One server when both are given the same address."""
        binds: dict[str, tuple[str, dict[str, Handler]]] = {}
        health, metrics = self.config.health_bind, self.config.metrics_bind
        if health is not None:
            binds[health] = ("--health-bind", {
                "/live": lambda: (200, "text/plain", b"live\n"), "/ready": self._ready})
        if metrics is not None and self._meter is not None:
            binds.setdefault(metrics, ("--metrics-bind", {}))[1]["/metrics"] = self._meter.page
        return [await serve_endpoints(bind, handlers, setting)
                for bind, (setting, handlers) in binds.items()]

    def _ready(self) -> Reply:
        presence, stopping = self._presence, self._stopping
        if stopping is not None and stopping.is_set():
            return 503, "text/plain", b"not ready: stopping\n"
        if presence is None or not presence.present.is_set():
            return 503, "text/plain", b"not ready: no lease (Redis unreachable)\n"
        return 200, "text/plain", b"ready\n"

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self._stopping is not None and self._stopping.is_set():
            logger.warning("second stop signal: cancelling in-flight connections")
            for task in list(self._active):
                task.cancel()
        self.stop()

    def _upkeep(self, routes: Routes) -> Callable[[], Awaitable[None]]:
        # Every second, while present (worker/spread.py: spreads, registration, reaping).
        return lambda: routes.upkeep(self._stopping, self._hub.presence_shard)

    room = property(lambda self: self._room)  # set while it runs fewer than concurrency

    def free(self) -> int:
        return self.config.concurrency - len(self._active)

    @property
    def _hub(self) -> Hub:
        if self.hub is None:
            raise RuntimeError("the node is not serving")
        return self.hub

    # Taking connections --------------------------------------------------------------------
    async def _take_loop(self, route: RouteQueue, presence: Presence, looks: int) -> None:
        fast, quick, backoff = False, False, Backoff()
        await presence.present.wait()
        try:
            while True:
                await self._room.wait()
                try:
                    if looks:
                        await self.reconcile(route)
                        looks -= 1
                    entries: list[bytes] = []
                    if fast:
                        want = min(self.config.concurrency - len(self._active), _MAX_TAKE)
                        entries = await route.take(want)
                        fast = len(entries) == want
                    if not entries:
                        started = time.perf_counter()
                        entry = await route.take_blocking()
                        entries = [entry] if entry is not None else []
                        # Two quick BLMOVE answers in a row (batch takes between them do not
                        # break the run) mean a queue is forming: take several at once. One
                        # alone is often a request that arrived just before the take, and the
                        # batch take after it would find the queue empty.
                        was_quick = quick
                        quick = bool(entries) and time.perf_counter() - started < _QUEUE_WAS_FULL
                        fast = quick and was_quick
                except (RedisUnavailable, ConnectionLost, ReplyError, OSError) as exc:
                    looks = _RECONCILE_LOOKS
                    logger.warning("cannot take from route %s (retrying): %s", route.route, exc)
                    await backoff.pause()
                    continue
                backoff.reset()
                for raw in entries:
                    self.dispatch(route, raw)
                if entries:
                    await let_woken_write()  # responses made at once leave before the next take
        finally:
            route.close()

    async def reconcile(self, route: RouteQueue) -> None:
        """Serve what this worker's processing list holds that no connection of its own has:
        requests a take whose link was dropped (Redis stalled, a failover) moved there."""
        running = {connection.connect.conn for connection in self._active.values()}
        for raw in await route.taken():
            conn = self._recent.conn_of(raw)
            if conn in running:
                continue
            if conn is not None and self._recent.seen(conn):
                # Taken and ended here already (its acknowledgement failed): never run twice;
                # kept only until its deadline, then dropped.
                if self._recent.overdue(conn):
                    route.drop(raw)
                continue
            logger.warning("found a request on route %s that a dropped connection took; "
                           "serving it", route.route)
            self.dispatch(route, raw)

    def dispatch(self, route: RouteQueue, raw: bytes) -> None:
        try:
            connect = decode_connect(raw)
        except VersionMismatch as exc:
            self._refuse(route, raw, exc)
            return
        except ProtocolError as exc:
            logger.error("skipping garbage on route %s: %s (first bytes %r)", route.route, exc,
                         bytes(raw[:32]))
            route.drop(raw)
            return
        self._recent.add(connect.conn, connect.deadline_ms)
        now = now_ms()
        if self._meter is not None and connect.queued_ms:
            self._meter.taken(route.route, now - connect.queued_ms)
        ahead = connect.deadline_ms - now
        if ahead < 0:  # never run after its deadline: its machine says what to do
            for action in fw.Forwarding(fw.Side.WORKER, 0).handle(fw.Event.DEADLINE):
                if action is fw.Action.DROP:
                    route.drop(raw)
                elif action is fw.Action.SEND_EXPIRED:
                    tell_expired(self._hub, connect)
            return
        if ahead > route.horizon_ms:
            route.saw_deadline(ahead)
        context = self._context
        if context is None:  # pragma: no cover - set before the take loops start
            raise RuntimeError("the node is not serving")
        connection = Connection(context, route, raw, connect)
        if self.figures is not None:
            self.figures.route(route.route).in_flight += 1
        task = context.hub.loop.create_task(connection.run())
        self._active[task] = connection
        task.add_done_callback(self._finished)
        if len(self._active) >= self.config.concurrency:
            self._room.clear()

    def _refuse(self, route: RouteQueue, raw: bytes, exc: VersionMismatch) -> None:
        """A request of a newer edge: never misread; its client gets 503 at once."""
        if self._recent.first_refusal(exc.version):
            logger.error("refusing requests on route %s: %s", route.route, exc)
        route.drop(raw)
        if exc.reply is not None and exc.conn is not None:
            self._hub.send_aside(exc.reply, exc.conn, {"type": EXPIRED})

    def _finished(self, task: asyncio.Task[None]) -> None:
        connection = self._active.pop(task, None)
        self.served += 1
        if connection is not None and self.figures is not None:
            counts = self.figures.route(connection.route.route)
            counts.in_flight -= 1
            counts.served += connection.ran
            counts.errors += connection.error
        if len(self._active) < self.config.concurrency:
            self._room.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("connection task failed", exc_info=task.exception())

    # Stopping ------------------------------------------------------------------------------
    async def _drain(self, routes: list[RouteQueue], takers: list[asyncio.Task[None]],
                     presence: Presence, service: ChannelService | None) -> None:
        """Stop taking; give back what was taken but not started; close WebSockets (1012) and
        let HTTP requests finish, within ``grace``; then the channels' consumers, and only then
        the channel layer, which the connections' applications used to the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.grace
        if service is not None:
            await service.stop_listening()
        for taker in takers:
            taker.cancel()
        await asyncio.gather(*takers, return_exceptions=True)
        await asyncio.sleep(0.01)  # let acknowledgements of the last entries taken settle
        for route in routes:
            with contextlib.suppress(Exception):
                given = await asyncio.wait_for(route.give_back(), 2.0)
                if given:
                    logger.info("gave %d untaken request(s) back to %s", given, route.route)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(route.unregister(), 1.0)
        for connection in list(self._active.values()):
            connection.shutdown(_RESTART)
        if self._active:
            logger.info("finishing %d connection(s) (up to %g s)", len(self._active),
                        self.config.grace)
            _, late = await asyncio.wait(list(self._active),
                                         timeout=max(deadline - loop.time(), 0.0))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if service is not None:
            await service.stop(max(deadline - loop.time(), 0.0))
        if self.watch is not None:
            await self.watch.close()
        await presence.stop()
        await self._hub.close()
        logger.info("worker %s stopped after %d connection(s)", self._hub.id, self.served)


def _describe(app: Any) -> str:
    """``module:qualname`` of an application (a function, a class, or an instance's class)."""
    named = app if hasattr(app, "__qualname__") else type(app)
    return f"{getattr(named, '__module__', '?')}:{getattr(named, '__qualname__', repr(app))}"
