"""A worker's operator endpoints: a small HTTP server for health probes (and metrics).

::

    server = await serve_endpoints("0.0.0.0:8001", {"/live": live, "/ready": ready})

Each handler returns ``(status, content type, body)``. Only ``GET`` and ``HEAD`` of the paths
given are answered; anything else gets 404 or 405, and a request that does not parse gets 400.
The server reads one request per connection and closes it: probes (a kubelet, a load balancer,
Prometheus) open a connection per check, and a server this small cannot be kept busy by a slow
client for longer than ``_READ_TIMEOUT``. It runs in the worker's own event loop, so a probe
that is answered also says that loop is turning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from .exceptions import ConfigurationError

__all__ = ["Handler", "Reply", "parse_bind", "serve_endpoints"]

logger = logging.getLogger(__name__)

Reply = tuple[int, str, bytes]
Handler = Callable[[], Reply]

_READ_TIMEOUT = 5.0
_MAX_HEAD = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


def parse_bind(value: str, setting: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); else a ConfigurationError
    naming ``setting``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(setting, f"expected HOST:PORT, got {value!r}",
                                 f"write e.g. {setting} 127.0.0.1:8001 (0.0.0.0:8001 for "
                                 "probes from other machines)")
    return host, int(port)


async def serve_endpoints(bind: str, handlers: Mapping[str, Handler], setting: str
                          ) -> asyncio.AbstractServer:
    """Serve ``handlers`` by path on ``bind`` (``HOST:PORT``); a port in use is a
    ConfigurationError naming ``setting``."""
    host, port = parse_bind(bind, setting)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):  # a client that went away: nothing to do
            status, kind, body, head_only = await _answer(reader, handlers)
            writer.write(_response(status, kind, body, head_only))
            await writer.drain()
        writer.close()

    try:
        return await asyncio.start_server(client, host, port, limit=_MAX_HEAD)
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot listen on {bind}: {exc.strerror or exc}",
                                 "choose a free port, or an address of this machine") from None


async def _answer(reader: asyncio.StreamReader, handlers: Mapping[str, Handler]
                  ) -> tuple[int, str, bytes, bool]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
    except asyncio.LimitOverrunError:
        return 400, "text/plain", b"request head too large\n", False
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return 400, "text/plain", b"not an HTTP/1.x request\n", False
    method, target = parts[0], parts[1].split(b"?", 1)[0].decode("latin-1")
    handler = handlers.get(target)
    if handler is None:
        return 404, "text/plain", b"not found\n", False
    if method not in (b"GET", b"HEAD"):
        return 405, "text/plain", b"GET or HEAD only\n", False
    status, kind, body = handler()
    return status, kind, body, method == b"HEAD"


def _response(status: int, kind: str, body: bytes, head_only: bool) -> bytes:
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + (b"" if head_only else body)
