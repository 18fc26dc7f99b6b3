"""``Server``: accept connections (with ``worker_connections`` backpressure), run the shared tick,
log access, count requests, and drain on shutdown. Usable without gunicorn.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, cast

from channels_distributed.server.config import ServerConfig
from channels_distributed.server.http import HttpProtocol

if TYPE_CHECKING:
    from channels_distributed.server.cycle import RequestCycle

__all__ = ["RequestInfo", "ResponseInfo", "Server", "StdLog"]

TICK = 0.25  # seconds between deadline checks; deadlines are met within one tick
_ACCEPT_BATCH = 64


class StdLog:
    """The subset of gunicorn's logger the server uses, over the standard ``logging`` module."""

    access_log_enabled = False

    def __init__(self, name: str = "channels_distributed.server") -> None:
        self.logger = logging.getLogger(name)
        self.error = self.logger.error
        self.warning = self.logger.warning
        self.info = self.logger.info
        self.debug = self.logger.debug
        self.exception = self.logger.exception

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """No access log without gunicorn."""


class RequestInfo:
    """A request as gunicorn's access log and request hooks read it (the attributes of
    gunicorn's own request object they use), with the ASGI ``scope`` besides."""

    __slots__ = ("fragment", "headers", "method", "path", "query", "scheme", "scope", "uri",
                 "version")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query = query = scope["query_string"].decode("latin-1")
        self.uri = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        self.fragment = ""
        self.version = (1, 1) if scope["http_version"] == "1.1" else (1, 0)
        self.scheme: str = scope["scheme"]
        self.headers = [
            (n.decode("latin-1").upper(), v.decode("latin-1")) for n, v in scope["headers"]
        ]

    def environ(self) -> dict[str, str]:
        """The WSGI-style environ gunicorn's access log formats (and post_request receives)."""
        client = self.scope["client"]
        environ = {
            "REQUEST_METHOD": self.method,
            "RAW_URI": self.uri,
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query,
            "SERVER_PROTOCOL": "HTTP/1.1" if self.version == (1, 1) else "HTTP/1.0",
            "REMOTE_ADDR": client[0] if client else "-",
        }
        for name, value in self.headers:
            environ["HTTP_" + name.replace("-", "_")] = value
        return environ


class ResponseInfo:
    """A response as gunicorn's access log and post_request hook read it."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self, cycle: RequestCycle) -> None:
        self.status = cycle.status
        self.sent = cycle.sent
        self.headers = [(_text(n), _text(v)) for n, v in cycle.headers_out]


def _text(value: Any) -> str:
    # What the application sent, valid or not (an invalid header was answered with a 500).
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


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
    ) -> None:
        self.app = app
        self.config = config
        self.loop = loop or asyncio.get_event_loop()
        self.log = log or StdLog()
        self.access_log = bool(getattr(self.log, "access_log_enabled", False))
        self.on_request = on_request
        # Called around each HTTP request when set (gunicorn's pre_request/post_request): an
        # object with request(scope), before(request) and after(request, cycle).
        self.hooks = hooks
        self.state: dict[str, Any] = {}
        self.connections: set[HttpProtocol] = set()
        self.pending = 0
        self.draining = False
        self.requests = 0
        self.now = self.loop.time()
        self.date_line = b""
        self._date_second = -1
        self.server_line = (
            b"server: %s\r\n" % config.server_header.encode("latin-1")
            if config.server_header
            else b""
        )
        self._listeners: list[tuple[socket.socket, ssl.SSLContext | None]] = []
        self._accepting = False
        self._tick: asyncio.TimerHandle | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._update_date()

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
        if self._accepting or self.draining:
            return
        self._accepting = True
        for sock, context in self._listeners:
            self.loop.add_reader(sock.fileno(), self._accept, sock, context)

    def _pause_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            for sock, _ in self._listeners:
                self.loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        for _ in range(_ACCEPT_BATCH):
            if len(self.connections) + self.pending >= self.config.worker_connections:
                self._pause_accepting()  # backpressure: the kernel backlog holds the rest
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it, or nothing left
            except OSError as exc:
                self.log.error("accept() failed: %s", exc)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending += 1
            self.loop.create_task(self._connect(conn, context))

    def _protocol(self) -> asyncio.Protocol:
        # HttpProtocol has asyncio.Protocol's methods without its base class: compiled, it is an
        # extension type, which cannot subclass a Python class.
        return cast(asyncio.Protocol, HttpProtocol(self))

    async def _connect(self, conn: socket.socket, context: ssl.SSLContext | None) -> None:
        try:
            if context is None:
                await self.loop.connect_accepted_socket(self._protocol, conn)
            else:
                # A client that never finishes its handshake gets the time a plain-text one
                # has to send its request head, not asyncio's 60 s handshake default.
                await self.loop.connect_accepted_socket(
                    self._protocol,
                    conn,
                    ssl=context,
                    ssl_handshake_timeout=self.config.header_timeout,
                )
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            self.log.debug("connection setup failed: %s", exc)
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
        self._below_limit()
        waiter = self._closed_waiter
        if not self.connections and waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the tick ---------------------------------------------------------------------------

    def _update_date(self) -> None:
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self.date_line = b"date: %s\r\n" % formatdate(second, usegmt=True).encode("ascii")

    def _on_tick(self) -> None:
        self.now = now = self.loop.time()
        self._update_date()
        for conn in list(self.connections):
            conn.on_tick(now)
        self._tick = self.loop.call_later(TICK, self._on_tick)

    # -- requests ---------------------------------------------------------------------------

    def request_done(self, cycle: RequestCycle) -> None:
        self.requests += 1
        if self.access_log:
            self._log_access(cycle)
        if self.on_request is not None:
            self.on_request()

    def _log_access(self, cycle: RequestCycle) -> None:
        request = RequestInfo(cycle.scope)
        elapsed = datetime.timedelta(seconds=time.perf_counter() - cycle.start_time)
        self.log.access(ResponseInfo(cycle), request, request.environ(), elapsed)

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(
        self,
        graceful: bool = True,
        timeout: float | None = None,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        """Stop accepting; let requests in flight finish within ``timeout``; close the rest."""
        self.draining = True
        self._pause_accepting()
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
        while self.connections and self.loop.time() < deadline:
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
        if self.connections:
            self.log.warning("graceful timeout: closing %d connection(s)", len(self.connections))
