"""``Connection``: what a request cycle and a WebSocket session use of their connection, and the
transport side every connection has.

The transport side: the peer's and our addresses (from the socket, or from a PROXY protocol
header a trusted front end sent first), the scheme, whether the peer is trusted with forwarded
headers, flow control both ways, the server's own error answers, and closing. ``HttpProtocol``
(``http.py``) subclasses it with HTTP/1.1 and overrides ``response_complete`` and ``reject``.
``RequestCycle`` and ``WebSocketSession`` know their connection only as a ``Connection``: they
import this module, not ``http.py`` (which imports them).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

from channels_distributed.server import access, proxy, response
from channels_distributed.server.context import ServerContext
from channels_distributed.server.flow import FlowControl

__all__ = ["Connection", "Owner"]


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


class Owner(Protocol):
    """Who keeps the open connections (``server.Server``: their limit, the tick, shutdown)."""

    def connection_opened(self, conn: Any) -> None: ...

    def connection_closed(self, conn: Any) -> None: ...


class Connection:
    def __init__(self, context: ServerContext, owner: Owner) -> None:
        self.context = context
        self.owner = owner
        self.config = context.config
        self.loop = context.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.scheme = "http"
        self.trusted = False
        self.proxy_buffer: bytes | None = None
        self.closed = False
        self.answered: Any = None  # the request cycle whose place the server's error answer took

    def _attach(self, transport: asyncio.BaseTransport) -> None:
        """``connection_made``'s part for every connection: keep the transport and what it
        tells, and tell the owner."""
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        self.client = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        host = self.client[0] if self.client else None
        self.trusted = self.config.forwarded_allow.allows(host)
        if self.config.proxy_protocol != "off" and self.config.proxy_allow.allows(host):
            self.proxy_buffer = b""
        self.owner.connection_opened(self)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def response_complete(self, cycle: Any) -> None:
        """A request cycle's response is out (``cycle.RequestCycle``, typed there): go on."""
        raise NotImplementedError("a connection serving request cycles overrides this")

    def abort_cycle(self, cycle: Any) -> None:
        """The response cannot be completed: drop the connection."""
        if not self.closed:
            self.closed = True
            self.transport.abort() if cycle.written else self.transport.close()

    def reject(self, status: int, message: str) -> None:
        """Answer a bad request with ``status`` and close (after any response in progress)."""
        raise NotImplementedError("a connection reading requests overrides this")

    def _proxy_header(self, data: bytes) -> bytes | None:
        """Read the PROXY protocol header at the start of the connection: the bytes after it,
        or None while it is incomplete (or was refused)."""
        buffered = (self.proxy_buffer or b"") + data
        try:
            result = proxy.parse_proxy_header(buffered, self.config.proxy_protocol)
        except proxy.BadProxy as exc:
            self.proxy_buffer = None
            self.reject(400, str(exc))
            return None
        if result is proxy.NEED_MORE:
            self.proxy_buffer = buffered
            return None
        consumed, client, local = cast("tuple[int, proxy.Address, proxy.Address]", result)
        self.proxy_buffer = None
        if client is not None:
            self.client, self.local = client, local
        return buffered[consumed:]

    def _write_error(self, status: int, message: str, request: Any = None) -> None:
        """The server's own answer to a request it refuses; with an access log, a line for the
        ``request`` answered (see ``access.refusal``), as gunicorn's workers log their 400s."""
        context = self.context
        self.transport.write(
            response.error_response(status, message, context.date_line, context.server_line)
        )
        if request is None or not context.access_log:
            return
        if not isinstance(request, dict):
            self.answered = request  # a cycle: its own line, if it ends, would be a second one
        context.request_done(access.refusal(request, status, message))
