"""``Server``: accept connections (with ``worker_connections`` backpressure), run the shared tick,
and drain on shutdown. Usable without gunicorn.

What its connections share (the clock, the Date line, the draining flag, the access log, the
request counter...) is its ``ServerContext`` (``context.py``), which it updates.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from channels_distributed.conf.server import ServerConfig
from channels_distributed.server.context import ServerContext
from channels_distributed.server.http import HttpProtocol

__all__ = ["Server", "StdLog"]

TICK = 0.25  # seconds between deadline checks; deadlines are met within one tick
_ACCEPT_BATCH = 64


class StdLog:
    """The subset of gunicorn's logger the server uses, over the standard ``logging`` module."""

    access_log_enabled = False

    def __init__(self, name: str = __name__) -> None:
        self.logger = logging.getLogger(name)
        self.error = self.logger.error
        self.warning = self.logger.warning
        self.info = self.logger.info
        self.debug = self.logger.debug
        self.exception = self.logger.exception

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """No access log without gunicorn."""


class Server:
    def __init__(
        self,
        app: Any,
        config: ServerConfig,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        log: Any = None,
        on_request: Callable[[], None] | None = None,
        hooks: Any = None,
        access_log: bool | None = None,
    ) -> None:
        self.config = config
        self.loop = loop or asyncio.get_event_loop()
        self.context = ServerContext(
            app, config, self.loop, log or StdLog(), on_request, hooks, access_log
        )
        self.connections: set[HttpProtocol] = set()
        # While draining: the applications of connections that closed, until they return.
        self.running: set[asyncio.Task[None]] = set()
        self.pending = 0
        self._listeners: list[tuple[socket.socket, ssl.SSLContext | None]] = []
        self._accepting = False
        self._tick: asyncio.TimerHandle | None = None
        self._closed_waiter: asyncio.Future[None] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state: what the application stores at startup, copied into each scope."""
        return self.context.state

    # -- accepting --------------------------------------------------------------------------

    def start(
        self, sockets: list[socket.socket], ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Start accepting on already-bound, listening ``sockets`` (gunicorn's listeners)."""
        for sock in sockets:
            sock.setblocking(False)
            self._listeners.append((sock, ssl_context))
        self._resume_accepting()
        self._tick = self.loop.call_later(TICK, self._on_tick)

    def _resume_accepting(self) -> None:
        if self._accepting or self.context.draining:
            return
        self._accepting = True
        for sock, ssl_context in self._listeners:
            self.loop.add_reader(sock.fileno(), self._accept, sock, ssl_context)

    def _pause_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            for sock, _ in self._listeners:
                self.loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        for _ in range(_ACCEPT_BATCH):
            if len(self.connections) + self.pending >= self.config.worker_connections:
                self._pause_accepting()  # backpressure: the kernel backlog holds the rest
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it, or nothing left
            except OSError as exc:
                self.context.log.error("accept() failed: %s", exc)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending += 1
            self.loop.create_task(self._connect(conn, ssl_context))

    def _protocol(self) -> asyncio.Protocol:
        # HttpProtocol has asyncio.Protocol's methods without its base class: compiled, it is an
        # extension type, which cannot subclass a Python class.
        return cast(asyncio.Protocol, HttpProtocol(self.context, self))

    async def _connect(self, conn: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        try:
            if ssl_context is None:
                await self.loop.connect_accepted_socket(self._protocol, conn)
            else:
                # A client that never finishes its handshake gets the time a plain-text one
                # has to send its request head, not asyncio's 60 s handshake default.
                await self.loop.connect_accepted_socket(
                    self._protocol,
                    conn,
                    ssl=ssl_context,
                    ssl_handshake_timeout=self.config.header_timeout,
                )
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            self.context.log.debug("connection setup failed: %s", exc)
            conn.close()
        finally:
            self.pending -= 1
            # A failed handshake frees a place too: without this, handshakes failing at the
            # connection limit left accepting paused for good.
            self._below_limit()

    def _below_limit(self) -> None:
        if (
            not self._accepting
            and len(self.connections) + self.pending < self.config.worker_connections
        ):
            self._resume_accepting()

    def connection_opened(self, conn: HttpProtocol) -> None:
        self.connections.add(conn)

    def connection_closed(self, conn: HttpProtocol) -> None:
        self.connections.discard(conn)
        if self.context.draining:
            self._keep_running(conn)
        self._below_limit()
        self._drained()

    def _keep_running(self, conn: HttpProtocol) -> None:
        # A connection closed while draining (a WebSocket closed with 1012, a client that left)
        # may leave its application running, told of the disconnect: the drain waits for it too,
        # so that what it does on the disconnect (the edge tells its worker's application, a
        # consumer leaves its groups) is done before the lifespan shutdown and the loop's end.
        for task in (conn.active.task if conn.active is not None else None,
                     conn.ws.task if conn.ws is not None else None):
            if task is not None and not task.done():
                self.running.add(task)
                task.add_done_callback(self._app_returned)

    def _app_returned(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self._drained()

    def _drained(self) -> None:
        waiter = self._closed_waiter
        if not self.connections and not self.running and waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the tick ---------------------------------------------------------------------------

    def _on_tick(self) -> None:
        context = self.context
        context.refresh(self.loop.time())
        for conn in list(self.connections):
            conn.on_tick(context.now)
        self._tick = self.loop.call_later(TICK, self._on_tick)

    # -- shutdown ---------------------------------------------------------------------------

    def stop_keepalive(self) -> None:
        """The requests in flight are the last (gunicorn's max_requests): their responses say
        ``connection: close``, so that no client sends another request on a connection about
        to be closed, and no new connection is accepted."""
        self.context.draining = True
        self._pause_accepting()

    async def shutdown(
        self,
        graceful: bool = True,
        timeout: float | None = None,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        """Stop accepting; let requests in flight finish within ``timeout`` (WebSockets are
        closed with 1012, and their applications' handling of the disconnect waited for); close
        the rest."""
        self.context.draining = True
        self._pause_accepting()
        # Closed, not only unwatched: a client connecting now is refused (or taken by another
        # process sharing the socket) instead of waiting in a backlog that nobody reads.
        for sock, _ in self._listeners:
            sock.close()
        self._listeners = []
        for conn in list(self.connections):
            conn.shutdown()
        if graceful:
            await self._wait_closed(
                self.config.graceful_timeout if timeout is None else timeout, notify
            )
        for conn in list(self.connections):
            conn.transport.abort()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    async def _wait_closed(self, timeout: float, notify: Callable[[], None]) -> None:
        deadline = self.loop.time() + timeout
        while (self.connections or self.running) and self.loop.time() < deadline:
            notify()  # the heartbeat goes on while draining
            self._closed_waiter = self.loop.create_future()
            try:
                await asyncio.wait_for(
                    self._closed_waiter, min(1.0, max(0.0, deadline - self.loop.time()))
                )
            except asyncio.TimeoutError:
                pass
            finally:
                self._closed_waiter = None
        if self.connections or self.running:
            self.context.log.warning(
                "graceful timeout: closing %d connection(s), %d application(s) still running",
                len(self.connections),
                len(self.running),
            )
