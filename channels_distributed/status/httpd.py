"""The status server's HTTP/1.1: a small server on asyncio, for GET and HEAD of a few paths.

Why this and not another server: the status server's work is a coroutine that collects the
status once a second (``collect()`` talks to Redis through the package's asyncio transport), and
its handlers only read what that coroutine keeps in memory. Serving HTTP from the same event loop
needs no thread and no lock between the two. ``http.server`` would run in a thread of its own
(a lock around the shared figures, a thread per client with ThreadingHTTPServer); the package's
own server (``server/``) is an ASGI server built for throughput, far more than three read-only
paths need. Requests are parsed by httptools (a dependency already: the package's server parses
with it), so this module only frames requests and responses.

Limits, since the server may listen beyond loopback (behind a token): a request's line and
headers together at most ``MAX_HEAD`` bytes, a body is read and dropped (GET and HEAD have none:
any other method gets 405), a connection idle for ``IDLE_TIMEOUT`` seconds is closed, and at most
``MAX_CONNECTIONS`` are open at once (the next ones get 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import httptools

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "MAX_HEAD", "HttpServer", "Request", "Response"]

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
_READ = 64 * 1024
# What every response says: nothing is cached (figures change every second, and a page fetched
# with a token must not be kept), no type is guessed, no address (maybe holding ?token=) is sent
# as a referrer.
_ALWAYS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
           ("Referrer-Policy", "no-referrer"))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, head_only: bool, keep_alive: bool) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
                 f"Content-Type: {self.content_type}", f"Content-Length: {len(self.body)}",
                 f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        lines.extend(f"{name}: {value}" for name, value in (*_ALWAYS, *self.headers))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


Handler = Callable[[Request], Response]


class _Parsing:
    """httptools' callbacks: the requests of one connection, as they complete."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.head_size = 0
        self.done: list[tuple[Request, bool]] = []
        self._url = b""
        self._headers: dict[str, str] = {}

    def on_message_begin(self) -> None:
        self.head_size, self._url, self._headers = 0, b"", {}

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        parts = urlsplit(self._url.decode("latin-1"))
        request = Request(self.parser.get_method().decode("latin-1"), parts.path,
                          parse_qs(parts.query), self._headers)
        self.done.append((request, self.parser.should_keep_alive()))


class HttpServer:
    """Serves ``handler``'s responses (a plain function: it only reads memory)."""

    def __init__(self, handler: Handler, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._handler = handler
        self._max = max_connections
        self._idle = idle_timeout
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: a free one); the address bound."""
        self._server = await asyncio.start_server(self._connection, host, port,
                                                  limit=_READ)
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._open)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self._max:
            writer.write(Response(503, b"too many connections\n").encode(False, False))
            await _close(writer)
            return
        self._open.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.TimeoutError):
            pass  # the client went, or sat idle: nothing to answer
        finally:
            self._open.discard(writer)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parsing = _Parsing()
        while True:
            data = await asyncio.wait_for(reader.read(_READ), self._idle)
            if not data:
                return
            try:
                parsing.parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # no WebSocket
                writer.write(Response(400, b"bad request\n").encode(False, False))
                return
            if parsing.head_size > MAX_HEAD:
                writer.write(Response(431, b"request head too large\n").encode(False, False))
                return
            while parsing.done:
                request, keep_alive = parsing.done.pop(0)
                writer.write(self._respond(request).encode(request.method == "HEAD",
                                                           keep_alive))
                await writer.drain()
                if not keep_alive:
                    return

    def _respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"read-only: GET and HEAD only\n",
                            headers=(("Allow", "GET, HEAD"),))
        try:
            return self._handler(request)
        except Exception:  # a bug in one answer must not end the server; it is logged
            log.exception("the status server failed to answer %s %s", request.method,
                          request.path)
            return Response(500, b"internal error (logged by the status server)\n")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
