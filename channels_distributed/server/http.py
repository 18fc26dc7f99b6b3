"""The HTTP/1.1 connection: httptools parsing, pipelining, limits, deadlines, upgrade hand-off.

Requests are parsed as bytes arrive; each gets a ``RequestCycle``. Pipelined requests wait their
turn (reading pauses meanwhile) so responses leave in order. Deadlines are plain floats checked by
the server's shared tick, so the hot path arms no timer. The transport side (addresses, PROXY
header, flow control, closing), all that request cycles and WebSocket sessions see of a
connection, is the base class ``Connection`` (``base.py``).
"""

from __future__ import annotations

import asyncio
import time
from asyncio import Task
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools

from channels_distributed.server import access, head, scope
from channels_distributed.server.base import Connection, Owner
from channels_distributed.server.context import ServerContext
from channels_distributed.server.cycle import RequestCycle
from channels_distributed.server.flow import BODY_BUFFERED, PIPELINED
from channels_distributed.server.head import CHECKED, FLAG_CONNECTION, FLAG_HOST, FLAG_UPGRADE

if TYPE_CHECKING:
    from channels_distributed.server.websocket import WebSocketSession

__all__ = ["HttpProtocol"]

_HEADERS_DEADLINE, _IDLE_DEADLINE, _BODY_DEADLINE = 1, 2, 3
_UNLIMITED = 1 << 62
_TASK_NAME = "HTTP request"  # a name given skips formatting "Task-<n>" for every request
# An upgraded connection's pipeline and header flags: it parses no more requests (never written).
_NO_PIPELINE: deque[RequestCycle] = deque(maxlen=0)
_NO_FLAGS: dict[bytes, int] = {}


class HttpProtocol(Connection):
    def __init__(self, context: ServerContext, owner: Owner) -> None:
        Connection.__init__(self, context, owner)
        self.parser: Any = httptools.HttpRequestParser(self)  # None once upgraded
        self.app = context.app
        config = self.config
        # The header limits as plain bounds for the common case (0 means no limit): a field
        # inside them is kept without a call to head.field, which has the rarer rules.
        self.line_limit = config.limit_request_line
        self.field_count = config.limit_request_fields or _UNLIMITED
        self.field_room = (config.limit_request_field_size or _UNLIMITED) - 3
        # Read for every request: kept here (typed attributes when compiled, see http.pxd).
        self.header_timeout = config.header_timeout
        self.body_timeout = config.body_timeout
        self.keepalive = config.keepalive
        self.root_path = config.root_path
        self.field_names = head.FIELD_NAMES  # shared, typed here (http.pxd): read per field
        self.flagged = dict(head.FLAGGED)
        for name, _ in config.secure_scheme_headers:
            self.flagged[name] = head.FLAG_FORWARDED
        self.reading: RequestCycle | None = None
        self.active: RequestCycle | None = None
        self.pipeline: deque[RequestCycle] = deque()
        self.ws: WebSocketSession | None = None
        self.deadline = 0.0
        self.deadline_kind = 0
        self.error: head.Reject | None = None
        self.in_head = False
        self.head_bytes = 0  # bytes of the request head, or of the trailer section, so far
        self.in_trailer = False
        self.trailer_fields = 0
        self.no_more = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.flags = 0
        self.upgrade_scope: dict[str, Any] | None = None
        self.scope_template: dict[str, Any] | None = None

    # -- connection lifecycle ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._attach(transport)
        self._set_deadline(_HEADERS_DEADLINE, self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner.connection_closed(self)
        for cycle in (self.active, self.reading, *self.pipeline):
            if cycle is not None:
                cycle.disconnect()
        if self.ws is not None:
            self.ws.connection_lost()
        if self.flow is not None:
            self.flow.wake()

    def eof_received(self) -> bool | None:
        if self.ws is not None:
            return self.ws.eof_received()
        return None

    def _set_deadline(self, kind: int, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.context.now + seconds

    def on_tick(self, now: float) -> None:
        """Called by the server a few times a second: enforce deadlines, ping WebSockets."""
        reading = self.reading
        if self.ws is not None:
            self.ws.on_tick(now)
        elif not self.deadline:
            return
        elif self.deadline_kind == _BODY_DEADLINE and (
            self.flow.reading_paused or (reading is not None and reading.expect_continue)
        ):
            # The client is not late while reading is paused (the application, or an earlier
            # request, is not done with what was sent) or while it waits for the 100 Continue
            # the application has not asked for yet (RFC 9110 section 10.1.1).
            self.deadline = now + self.body_timeout
        elif now >= self.deadline:
            if self.deadline_kind == _HEADERS_DEADLINE and self.in_head and self.active is None:
                self._write_error(408, "request head not received in time", access.head_scope(self))
            elif self.deadline_kind == _BODY_DEADLINE and reading is not None:
                if reading is self.active and not reading.written:
                    self._write_error(408, "request body not received in time", reading)
                reading.disconnect()
            self.close()

    def shutdown(self) -> None:
        """Graceful shutdown: close when idle, else after the response in progress."""
        if self.ws is not None:
            self.ws.shutdown()
        elif self.active is None and not self.in_head:
            self.close()

    # -- bytes in ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.data_received(data)
            return
        if self.proxy_buffer is not None:
            rest = self._proxy_header(data)
            if rest is None:
                return
            data = rest
        if data.startswith(b"\r\n\r\n") and not self.in_head and self.reading is None:
            # RFC 9112 section 2.2 tolerates one empty line before a request, not more.
            self.url = b""  # the last request's: this one has no request line
            self.reject(400, "empty lines before the request line")
            return
        trailing = self.in_trailer
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserCallbackError as exc:
            # httptools keeps what a callback raised as the context of its own error.
            error = exc.__context__
            if not isinstance(error, head.Reject):
                error = head.Reject(400, "invalid request")
            self.error = error
            self.reject(error.status, str(error))
        except httptools.HttpParserError as exc:
            self.reject(400, str(exc) or "invalid request")
        else:
            if self.in_head:
                self.head_bytes += len(data)
                if self.head_bytes > self.config.max_head:
                    self.reject(431, "request header block too large")
            elif trailing and self.in_trailer:
                # All of this feed came after a chunk's size line without chunk data: the
                # trailer section. httptools buffers a field whole (re-joining its pieces at
                # every feed) before on_header sees it, so its size is bounded here, as a head's.
                self.head_bytes += len(data)
                if self.head_bytes > self.config.max_head:
                    self.reject(431, "request trailer section too large")

    def reject(self, status: int, message: str) -> None:
        """Answer a bad request with ``status`` and close, after any response in progress."""
        if self.closed:
            return
        if self.no_more and self.error is None and self.active is not None:
            return  # bytes after a request that ends the connection: ignore them
        self.context.log.warning("Invalid request from ip=%s: %s", self.client, message)
        self.flow.pause_reading(PIPELINED)
        self.no_more = True
        error = self.error = head.Reject(status, message)
        active, reading = self.active, self.reading
        # What the access log shows with the answer: the refused head, or the broken body's cycle.
        error.request = access.head_scope(self) if reading is None else reading
        if reading is not None and reading is not active:
            # A queued request with a broken body must never start: it is dropped, and the 400
            # follows the responses to the requests before it.
            self.reading = None
            self.pipeline.remove(reading)
            reading.disconnect()
        elif active is not None and reading is active:
            # The request being served has a broken body: the application sees a disconnect.
            active.disconnect()
            if active.written:
                self.close()
                return
            active = None
        if active is None:
            self._write_error(status, message, error.request)
            self.close()

    # -- httptools callbacks ----------------------------------------------------------------

    # The callbacks below run for every request (on_header for every field): deadlines are set
    # inline and the common case skips the head.* helpers, one Python call each.

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.flags = 0
        self.in_head = True
        self.head_bytes = 0
        self.deadline_kind = _HEADERS_DEADLINE
        self.deadline = self.context.now + self.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        # The shortest method is 3 bytes: a line that fits with it needs no closer look.
        if self.line_limit and len(self.url) + 13 > self.line_limit:
            head.check_line(self.config, self.parser.get_method(), self.url)

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        lowered = self.field_names.get(name)  # a name seen before: no underscore, lowercased
        if lowered is None and name.find(b"_") < 0:  # see head.field: cheaper than `in`
            lowered = head.field_name(name)
        if (
            lowered is not None
            and self.in_head
            and len(headers) < self.field_count
            and len(name) + len(value) < self.field_room
            and (not value or value[-1] not in (0x20, 0x09))  # no trailing space or tab
        ):
            kept = (lowered, value)
        else:
            if not self.in_head:
                self._trailer_field(name, value)
                return
            checked = head.field(self.config, len(headers), name, value, True)
            if checked is None:
                return
            kept = checked
        headers.append(kept)
        flag = self.flagged.get(kept[0])
        if flag:
            if flag & self.flags and flag & head.SINGLETONS:
                raise head.Reject(400, f"duplicate {kept[0].decode('latin-1')} header")
            self.flags |= flag

    def _trailer_field(self, name: bytes, value: bytes) -> None:
        # A trailer field is held to the head's limits (count and size), then dropped: ASGI has
        # no place for it.
        head.field(self.config, self.trailer_fields, name, value, False)
        self.trailer_fields += 1

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.deadline = 0.0
        keep_alive = self.parser.should_keep_alive()
        if keep_alive and not self.flags & FLAG_CONNECTION:
            # llhttp keeps a request without a Connection field alive only for HTTP/1.1 (the
            # only accepted version with a non-zero minor): this skips get_http_version(),
            # which formats a new string for every request.
            version = "1.1"
        else:
            version = self.parser.get_http_version()
            if version not in ("1.1", "1.0"):
                raise head.Reject(400, f"unsupported HTTP version {version}")
        if not self.flags & FLAG_HOST and version == "1.1":
            # RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
            raise head.Reject(400, "HTTP/1.1 request without a Host header")
        request = self._scope(version)
        keep_alive = keep_alive and not self.context.draining
        expect_continue, length = False, None
        if self.flags & CHECKED:
            expect_continue, length = head.framing(self.headers, version)
            if self.flags & head.FLAG_FORWARDED and self.trusted:
                head.forwarded(self.headers, self.config, request)
        if self.flags & FLAG_UPGRADE and self.parser.should_upgrade():
            if head.upgrade_kind(self.headers) == b"websocket" and request["method"] == "GET":
                self.upgrade_scope = request
                return
            keep_alive = False  # an upgrade we do not speak: answer over HTTP, then close
        cycle = RequestCycle(self, self.context, request, keep_alive, expect_continue, length)
        # Slowloris on the body: each chunk must follow the last within body_timeout.
        self.deadline_kind = _BODY_DEADLINE
        self.deadline = self.context.now + self.body_timeout
        if self.context.access_log:
            cycle.start_time = time.perf_counter()  # loop.time() ticks per ms on uvloop
        self.reading = cycle
        if self.active is None:
            self._start(cycle)
        else:
            self.pipeline.append(cycle)
            self.flow.pause_reading(PIPELINED)

    def _scope(self, version: str) -> dict[str, Any]:
        shared = self.scope_template
        if shared is None:  # at the first request: after the PROXY header, if any
            shared = self.scope_template = scope.template(
                self.local, self.client, self.scheme, self.root_path
            )
        return scope.http_scope(
            shared, version, self.parser.get_method(), self.url, self.headers, self.context.state
        )

    def on_chunk_header(self) -> None:
        # From a chunk's size line to its data; after the last chunk (size 0, no data), the
        # trailer section until the end of the message: see data_received.
        self.in_trailer = True
        self.head_bytes = 0
        self.trailer_fields = 0

    def on_body(self, body: bytes) -> None:
        self.in_trailer = False
        self._set_deadline(_BODY_DEADLINE, self.body_timeout)
        if self.reading is not None:
            self.reading.feed(body)

    def on_message_complete(self) -> None:
        self.in_trailer = False
        cycle, self.reading = self.reading, None
        self.deadline = 0.0
        if cycle is not None and cycle.complete and self.active is None:
            # The body was drained after its response: the connection is idle again.
            self._set_deadline(_IDLE_DEADLINE, self.keepalive)
        if cycle is not None:
            cycle.message_complete()
            if not cycle.keep_alive:
                self.no_more = True
                self.flow.pause_reading(PIPELINED)

    # -- cycles -----------------------------------------------------------------------------

    def _start(self, cycle: RequestCycle) -> None:
        self.active = cycle
        self.context.request_started()
        hooks, loop = self.context.hooks, self.loop
        run = cycle.run(self.app) if hooks is None else cycle.run_hooked(self.app, hooks)
        if loop.get_task_factory() is None:
            # What create_task does without a factory, less its wrapper and the name it formats.
            cycle.task = Task(run, loop=loop, name=_TASK_NAME)
        else:
            cycle.task = loop.create_task(run)

    def response_complete(self, done: Any) -> None:
        cycle: RequestCycle = done  # typed in http.pxd: its fields are read at C level
        if cycle is not self.answered:  # else the server's answer was logged
            self.context.request_done(cycle)
        if not cycle.keep_alive or self.closed:
            self.close()
            return
        if not cycle.message_done and not cycle.can_drain():
            self.close()
            return
        if cycle.body:
            cycle.body = []
        self.flow.resume_reading(BODY_BUFFERED)
        self.active = None
        if self.pipeline:
            following = self.pipeline.popleft()
            if not self.pipeline and self.error is None:
                self.flow.resume_reading(PIPELINED)
            self._start(following)
        elif self.error is not None:
            self._write_error(self.error.status, str(self.error), self.error.request)
            self.close()
        elif self.context.draining and not self.in_head:
            self.close()
        elif not self.in_head:
            self.deadline_kind = _IDLE_DEADLINE
            self.deadline = self.context.now + self.keepalive

    # -- WebSocket --------------------------------------------------------------------------

    def _upgrade(self, rest: bytes) -> None:
        upgraded, self.upgrade_scope = self.upgrade_scope, None
        if upgraded is None or self.active is not None:
            if self.active is None and self.reading is None:
                self.close()
            return
        # Imported at the first upgrade, not with this module: the websockets library would add
        # about 30 ms to the start of a worker that serves only HTTP.
        from channels_distributed.server.websocket import WebSocketSession

        self.deadline = 0.0
        self.ws = WebSocketSession(self, self.context, upgraded, self.url, rest)
        # No request is parsed again: what was kept for requests goes (a kilobyte and more,
        # otherwise held for as long as the WebSocket stays open, idle or not).
        self.parser = None
        self.pipeline = _NO_PIPELINE
        self.flagged = _NO_FLAGS
        self.scope_template = None
        self.url = b""
