"""WebSocket connections: the upgrade parsed once by httptools, frames by ``websockets`` sans-I/O.

The handshake request is never re-parsed: the headers httptools already read are handed to
``ServerProtocol.accept`` to validate and negotiate; the 101 is sent when the application sends
``websocket.accept``. Whole small messages take the fast path of ``framing.py`` (the base class);
fragmentation, control frames, compression, size limits and the close handshake are the
``websockets`` protocol's; this module runs the handshake and the ASGI conversation, and pings
idle peers.

Once the client is gone (its socket closed, or its Close frame received), ``send()`` raises
``ClientGone``, an ``OSError`` as ASGI spec 2.4 asks; an application that then ends with an
exception is logged at DEBUG only. The one exception: the answer to the handshake of a client that
left before it (``websocket.accept``, or a denial) is dropped, and the next ``receive()`` says
``websocket.disconnect``, so that the application's disconnect handling runs. A graceful stop
closes open WebSockets with 1012 (service restart).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from channels_distributed.exceptions import ClientGone
from channels_distributed.server.access import Answer
from channels_distributed.server.base import Connection
from channels_distributed.server.context import ServerContext
from channels_distributed.server.flow import BODY_BUFFERED
from channels_distributed.server.framing import (
    CLOSED,
    CONNECTING,
    OPEN,
    RESPONDING,
    Framing,
    ws_logger,
)
from channels_distributed.server.handshake import extensions, request_headers, websocket_scope
from channels_distributed.server.response import status_line

if TYPE_CHECKING:
    import asyncio

__all__ = ["WebSocketSession"]

_ANSWERS = frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"})


class WebSocketSession(Framing):
    def __init__(
        self,
        conn: Connection,
        context: ServerContext,
        scope: dict[str, Any],
        target: bytes,
        rest: bytes,
    ) -> None:
        Framing.__init__(self, conn, context, rest)
        self.config = context.config
        self.scope = websocket_scope(scope, conn.scheme)
        self.http_response: tuple[int, list[Any], list[bytes]] | None = None
        self.started = time.perf_counter() if context.access_log else 0.0
        self.answered = False  # the application answered the handshake
        self.told_gone = False  # send() raised ClientGone to the application
        self.task: asyncio.Task[None] | None = None
        offered = extensions(self.config.ws_per_message_deflate,
                             self.config.ws_deflate_window_bits)
        self.handshake = ServerProtocol(extensions=offered, logger=ws_logger)
        self.response = self.handshake.accept(
            Request(target.decode("latin-1"), request_headers(scope)))
        if self.response.status_code != 101:
            self.transport.write(self.response.serialize())
            self._logged(self.response.status_code, self.response.headers.raw_items(),
                         len(self.response.body or b""))
            self._closed(1006)
            conn.close()
            return
        self.task = conn.loop.create_task(self.run())

    # -- transport events -------------------------------------------------------------------

    def connection_lost(self) -> None:
        code, reason = 1006, ""
        if self.proto is not None:
            received = self.proto.close_rcvd
            close = received or self.proto.close_sent
            code = close.code if close is not None else 1006
            reason = received.reason if received is not None else ""
        self._closed(code, reason)

    def on_tick(self, now: float) -> None:
        if self.close_deadline and now >= self.close_deadline:
            self.conn.close()
        elif self.state == OPEN and self.config.ws_ping_interval:
            if self.ping_sent and now - self.ping_sent > self.config.ws_ping_timeout:
                self.protocol().fail(1011, "keepalive ping timeout")
                self.flush()
            elif (not self.ping_sent and now - self.last_seen > self.config.ws_ping_interval
                  and self.is_open()):
                self.protocol().send_ping(b"keepalive")
                self.ping_sent = now
                self.flush()

    def shutdown(self) -> None:
        if self.state == OPEN and self.is_open():
            self.protocol().send_close(1012, "service restart")
            self.flush()
        elif self.state != OPEN:
            self.conn.close()

    # -- ASGI -------------------------------------------------------------------------------

    def _closed(self, code: int, reason: str = "") -> None:
        if self.gone is None:
            # ASGI's reason is the one in the client's Close frame.
            self.gone = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self.events.append(self.gone)
        self.state = CLOSED
        self.wake()

    async def answer(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.state == CONNECTING:
            self._send_connecting(kind, message)
        elif self.state == RESPONDING:
            self._send_response_body(kind, message)
        elif self.state == OPEN:
            await self._send_open(kind, message)
        elif self.answered or kind not in _ANSWERS:
            raise self._gone()
        else:
            # The client left before the application answered its handshake: the answer goes
            # nowhere, and the next receive() says websocket.disconnect (a Channels consumer's
            # disconnect() runs, where an OSError here would end the consumer without it).
            self.answered = True

    def _gone(self) -> ClientGone:
        self.told_gone = True
        return ClientGone(f"the client of WebSocket {self.scope['path']} went away")

    def _send_connecting(self, kind: str, message: dict[str, Any]) -> None:
        self.answered = True
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._reject(403, [], b"")
        elif kind == "websocket.http.response.start":
            self.state = RESPONDING
            self.http_response = (message["status"], list(message.get("headers", ())), [])
        else:
            raise RuntimeError(f"expected websocket.accept or websocket.close, got {kind!r}")

    def _send_response_body(self, kind: str, message: dict[str, Any]) -> None:
        if kind != "websocket.http.response.body" or self.http_response is None:
            raise RuntimeError(f"expected websocket.http.response.body, got {kind!r}")
        self.http_response[2].append(message.get("body", b""))
        if not message.get("more_body", False):
            status, headers, body = self.http_response
            self._reject(status, headers, b"".join(body))

    def _reject(self, status: int, headers: list[Any], body: bytes) -> None:
        lines = [status_line(status)]
        for name, value in headers:
            if name.lower() not in (b"content-length", b"connection", b"transfer-encoding"):
                lines += [name, b": ", value, b"\r\n"]
        lines.append(b"content-length: %d\r\nconnection: close\r\n" % len(body))
        lines += [self.context.date_line, self.context.server_line, b"\r\n", body]
        self.transport.write(b"".join(lines))
        self._logged(status, headers, len(body))
        self.conn.close()
        self._closed(1006)

    def _logged(self, status: int, headers: Any, sent: int) -> None:
        """The handshake's answer is out: an access line, as for an HTTP request."""
        if self.context.access_log:
            self.context.request_done(Answer(self.scope, status, sent, headers, self.started))

    def _accept(self, message: dict[str, Any]) -> None:
        response: Response = self.response
        subprotocol = message.get("subprotocol")
        if subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in message.get("headers", ()):
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        if self.config.server_header and "Server" not in response.headers:
            response.headers["Server"] = self.config.server_header
        self.transport.write(response.serialize())
        self._logged(101, response.headers.raw_items(), 0)
        self.max_size = min(self.config.ws_max_message_size, 1 << 60)  # a C integer, compiled
        self.extensions = self.handshake.extensions
        del self.handshake, self.response  # done with: a few KiB a connection
        if self.extensions:
            # Compressed frames are websockets' to read and write: no fast path.
            self.fast = False
            self.protocol()
        self.state = OPEN
        self.opened = True
        self.flow.resume_reading(BODY_BUFFERED)
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            self.frames_in(data)

    async def _send_open(self, kind: str, message: dict[str, Any]) -> None:
        proto = self.proto
        if proto is not None and proto.state is not State.OPEN and (
            proto.close_rcvd is not None or proto.state is not State.CLOSING
        ):
            raise self._gone()  # the client closed, or the connection failed
        if kind == "websocket.send":
            if proto is not None and proto.state is not State.OPEN:
                return  # our Close is out: the application learns the end from receive()
            self.send_message(message.get("text"), message.get("bytes"))
            if self.flow.write_paused:
                await self.flow.drain()
        elif kind == "websocket.close":
            if self.is_open():
                self.protocol().send_close(message.get("code", 1000), message.get("reason") or "")
                self.flush()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an open WebSocket")

    async def run(self) -> None:
        try:
            await self.context.app(self.scope, self.receive, self.send)
        except Exception as exc:
            if self.told_gone:  # it ended of the OSError send() raised: no error of its own
                self.context.log.debug(
                    "ASGI application (WebSocket %s) ended with %r after its client left",
                    self.scope["path"],
                    exc,
                )
            else:
                self.context.log.error(
                    "Exception in ASGI application (WebSocket %s)",
                    self.scope["path"],
                    exc_info=True,
                )
            self._end(1011, 500)
        else:
            if self.state == RESPONDING:
                self.context.log.error(
                    "ASGI application returned without completing the WebSocket denial response"
                    " to %s",
                    self.scope["path"],
                )
            self._end(1000, 403)

    def _end(self, code: int, status: int) -> None:
        if self.state == CONNECTING:
            self._reject(status, [], b"")
        elif self.state == RESPONDING:
            # A denial response left unfinished: its parts are held until the last one, so
            # nothing was written yet and a 500 takes its place (then close, like any denial).
            self._reject(500, [], b"")
        elif self.state == OPEN and self.is_open():
            self.protocol().send_close(code)
            self.flush()
