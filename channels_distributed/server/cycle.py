"""One HTTP request/response exchange: the ASGI ``receive``/``send`` pair and response framing.

Framing rules (RFC 9112 section 6): HEAD, 1xx, 204 and 304 carry no body; a declared
Content-Length is enforced; a complete body sent in one message gets a Content-Length; a streamed
body of unknown length is chunked for HTTP/1.1 clients and close-delimited for HTTP/1.0 clients.
The head and a small body leave in one ``transport.write``; status lines and the checks of the
application's header fields are ``response.py``'s. A cycle is given its connection (as the
``Connection`` base class) and the server's ``ServerContext`` when it is made.

Once the client is gone, ``send()`` raises ``ClientGone`` (an ``OSError``, as ASGI spec 2.4 asks):
frameworks that stream (Starlette's ``StreamingResponse``) stop on it instead of listening for
``http.disconnect``. An application that then ends with an exception is logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from channels_distributed.exceptions import ClientGone
from channels_distributed.server import response
from channels_distributed.server.base import Connection
from channels_distributed.server.context import ServerContext
from channels_distributed.server.flow import BODY_BUFFERED
from channels_distributed.server.response import (
    CONNECTION,
    DATE,
    KNOWN_NAMES,
    KNOWN_VALUES,
    LENGTH,
    TE,
    ResponseError,
)

__all__ = ["RequestCycle"]

logger = logging.getLogger(__name__)

_DISCONNECT = {"type": "http.disconnect"}
_LENGTH_LINES: dict[int, bytes] = {}  # a body's size -> its content-length line


class RequestCycle:
    def __init__(
        self,
        conn: Connection,
        context: ServerContext,
        scope: dict[str, Any],
        keep_alive: bool,
        expect_continue: bool,
        content_length: int | None,
    ) -> None:
        self.conn = conn
        self.context = context
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.content_length = content_length
        self.body: list[bytes] = []
        self.buffered = 0
        self.discarded = 0
        self.message_done = self.body_read = False
        self.disconnected = False
        self.told_gone = False  # send() raised ClientGone to the application
        self.waiter: asyncio.Future[None] | None = None
        self.started = self.complete = self.written = self.chunked = False
        self.no_body = scope["method"] == "HEAD"
        self.status = 0
        self.headers_out: Iterable[Any] = ()
        self.length: int | None = None
        self.sent = 0
        self.start_time = 0.0
        self.task: asyncio.Task[None] | None = None

    # -- events from the parser -------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self.complete:
            # The response is out: the rest of the body is read and dropped, within a bound.
            self.discarded += len(chunk)
            if self.discarded > self.conn.config.max_drain:
                self.conn.close()
            return
        self.body.append(chunk)
        self.buffered += len(chunk)
        if self.buffered > self.conn.config.high_water:
            self.conn.flow.pause_reading(BODY_BUFFERED)
        self._wake()

    def can_drain(self) -> bool:
        """Whether the unread rest of the body can be read and dropped to keep the connection
        (up to ``max_drain`` bytes) once the response is out."""
        limit = self.conn.config.max_drain
        if self.content_length is None:
            return limit > 0
        return self.content_length - self.buffered - self.discarded <= limit

    def message_complete(self) -> None:
        self.message_done = True
        self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- ASGI -------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if self.body_read:
            # The whole body was handed over: the next event is the disconnect (or the end of
            # the response), however long that takes -- Django listens for it in a task.
            while not self.disconnected and not self.complete:
                self.waiter = self.conn.loop.create_future()
                await self.waiter
            return _DISCONNECT
        if not self.body and not self.message_done and not self.disconnected and not self.complete:
            if self.expect_continue:
                self.expect_continue = False
                self.conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiter = self.conn.loop.create_future()
            await self.waiter
        if self.disconnected or self.complete:
            return _DISCONNECT
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        self.buffered = 0
        self.conn.flow.resume_reading(BODY_BUFFERED)
        self.body_read = self.message_done
        return {"type": "http.request", "body": body, "more_body": not self.message_done}

    async def send(self, message: dict[str, Any]) -> None:
        if self._send(message):
            await self.conn.flow.drain()

    def _send(self, message: Any) -> bool:
        """``send()`` but its wait: whether the application must wait for the client (a body
        that has more to come). Compiled, its reads of ``fields`` are C calls (cycle.pxd)."""
        if self.disconnected:
            raise self._gone()
        fields = message if type(message) is dict else dict(message)
        kind = fields["type"]
        if kind == "http.response.body":
            if not self.started:
                raise ResponseError("http.response.body sent before http.response.start")
            if self.complete:
                raise ResponseError("http.response.body sent after the response was complete")
            more = fields.get("more_body", False)
            self._body(fields.get("body", b""), more)
            return bool(more)
        if kind == "http.response.start":
            if self.started:
                raise ResponseError("http.response.start sent twice")
            status = fields["status"]
            if not isinstance(status, int) or not 100 <= status <= 999:
                raise ResponseError(f"invalid status {status!r}; use an integer 100-999")
            self.started = True
            self.status = status
            self.headers_out = fields.get("headers", ())
            return False
        raise ResponseError(f"unexpected ASGI message {kind!r} on an HTTP connection")

    # -- framing ----------------------------------------------------------------------------

    def _gone(self) -> ClientGone:
        self.told_gone = True
        return ClientGone(
            f"the client of {self.scope['method']} {self.scope['path']} went away"
        )

    def _body(self, body: bytes, more: bool) -> None:
        if not self.written:
            self.conn.transport.write(self._head(body, more))
            self.written = True
        else:
            data = self._frame(body, more)
            if data:
                self.conn.transport.write(data)
        if not more:
            self._finish()

    def _frame(self, body: bytes, more: bool) -> bytes:
        if self.no_body:
            return b""
        self.sent += len(body)
        if self.chunked:
            chunk = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            return chunk if more else chunk + b"0\r\n\r\n"
        if self.length is not None and self.sent > self.length:
            self.keep_alive = False
            raise ResponseError(
                f"response body longer than its Content-Length ({self.sent} > {self.length})"
            )
        return body

    def _head(self, body: bytes, more: bool) -> bytes:
        """The response head, and the first part of the body framed after it: one join."""
        status = self.status
        parts = [response.status_line(status)]
        length = None
        has_date = has_server = False
        names, values = KNOWN_NAMES, KNOWN_VALUES  # typed locals when compiled (cycle.pxd)
        for name, value in self.headers_out:
            special = names.get(name, -1) if type(name) is bytes else -1
            if special < 0 or type(value) is not bytes or value not in values:
                special = response.header_kind(name, value)  # raises if the field is invalid
            if special:
                if special == LENGTH:
                    length = response.parse_length(value)
                elif special == TE:
                    continue  # framing is ours to choose
                elif special == CONNECTION:
                    if value.lower() == b"close":
                        self.keep_alive = False
                    continue
                elif special == DATE:
                    has_date = True
                else:
                    has_server = True
            parts.append(name)
            parts.append(b": ")
            parts.append(value)
            parts.append(b"\r\n")
        if status < 200 or status == 204 or status == 304:
            self.no_body = True
        elif length is None:
            length = self._choose_framing(body, more, parts)
        self.length = length
        self._connection_header(parts)
        if not has_date:
            parts.append(self.context.date_line)
        if not has_server:
            parts.append(self.context.server_line)
        parts.append(b"\r\n")
        parts.append(self._frame(body, more))
        return b"".join(parts)

    def _choose_framing(self, body: bytes, more: bool, parts: list[bytes]) -> int | None:
        if not more:
            size = len(body)
            line = _LENGTH_LINES.get(size)
            if line is None:  # formatted once per distinct length (bounded, as response.py's)
                if len(_LENGTH_LINES) >= 512:
                    _LENGTH_LINES.clear()
                line = _LENGTH_LINES[size] = b"content-length: %d\r\n" % size
            parts.append(line)
            return None if self.no_body else size
        if self.no_body:
            return None
        if self.scope["http_version"] == "1.1":
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            self.keep_alive = False  # HTTP/1.0 has no chunked coding: close-delimited body
        return None

    def _connection_header(self, parts: list[bytes]) -> None:
        if self.expect_continue and not self.message_done:
            self.keep_alive = False  # the client may or may not send the body now: cannot reuse
        if self.context.draining:
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.scope["http_version"] == "1.0":
            parts.append(b"connection: keep-alive\r\n")

    def _finish(self) -> None:
        self.complete = True
        self._wake()
        if self.length is not None and self.sent < self.length and not self.no_body:
            logger.error(
                "response to %s %s shorter than its Content-Length (%d < %d); closing",
                self.scope["method"],
                self.scope["path"],
                self.sent,
                self.length,
            )
            self.keep_alive = False
        self.conn.response_complete(self)

    async def run(self, app: Any) -> None:
        """Run the application for this request; answer 500 if it fails before responding."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self.conn.abort_cycle(self)
            raise
        except BaseException as exc:
            if self.told_gone and isinstance(exc, Exception):
                # It ended of the OSError send() raised (or of what its framework made of it):
                # the client left, which is no error of the application's.
                self.context.log.debug(
                    "ASGI application (%s %s) ended with %r after its client left",
                    self.scope["method"],
                    self.scope["path"],
                    exc,
                )
                return
            self.context.log.error(
                "Exception in ASGI application (%s %s)",
                self.scope["method"],
                self.scope["path"],
                exc_info=exc,
            )
            self._failed()
            if not isinstance(exc, Exception):
                raise
        else:
            # An application that returns after http.disconnect without answering is done: the
            # client left (or the server answered a broken or late body itself).
            if not self.complete and not self.disconnected:
                self.context.log.error(
                    "ASGI application returned without completing the response to %s %s",
                    self.scope["method"],
                    self.scope["path"],
                )
                self._failed()

    async def run_hooked(self, app: Any, hooks: Any) -> None:
        """``run`` between gunicorn's pre_request and post_request hooks (``Server.hooks``,
        set only when the user set one: otherwise ``run`` serves alone)."""
        request = hooks.request(self.scope)

        async def hooked_app(scope: Any, receive: Any, send: Any) -> None:
            hooks.before(request)  # raising is an application error (500), as in gunicorn
            await app(scope, receive, send)

        try:
            await self.run(hooked_app)
        finally:
            hooks.after(request, self)

    def _failed(self) -> None:
        if self.complete or self.disconnected:
            return
        if self.written:
            self.keep_alive = False
            self.conn.abort_cycle(self)
            return
        self.keep_alive = False
        self.status = 500
        self.headers_out = [(b"content-type", b"text/plain; charset=utf-8")]
        self.no_body = self.scope["method"] == "HEAD"
        self.length = None
        self.chunked = False
        self._body(b"Internal Server Error\n", False)

