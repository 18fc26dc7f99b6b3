"""A request and its response as gunicorn's access log and request hooks read them.

gunicorn's logger and its ``pre_request``/``post_request`` hooks were written for its own request
and response objects: ``RequestInfo`` and ``ResponseInfo`` carry the attributes they use, built
from an ASGI scope and a finished request cycle, or from an ``Answer``: a response the server
wrote itself (its error answer to a request head it refused, a WebSocket handshake's).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from channels_distributed.server.response import ERROR_HEADERS, error_body

__all__ = ["Answer", "Exchange", "RequestInfo", "ResponseInfo", "head_scope", "refusal"]


class Exchange(Protocol):
    """What is read of a request cycle (``cycle.RequestCycle``) once its response is done."""

    scope: dict[str, Any]
    status: int
    sent: int
    headers_out: Iterable[Any]
    start_time: float


class RequestInfo:
    """A request as gunicorn's access log and request hooks read it (the attributes of
    gunicorn's own request object they use), with the ASGI ``scope`` besides."""

    __slots__ = ("fragment", "headers", "method", "path", "query", "scheme", "scope", "uri",
                 "version")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.method: str = scope.get("method", "GET")  # a WebSocket scope has none: a GET
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
        version = self.scope["http_version"]
        environ = {
            "REQUEST_METHOD": self.method,
            "RAW_URI": self.uri,
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query,
            "SERVER_PROTOCOL": f"HTTP/{version}" if version else "-",
            "REMOTE_ADDR": client[0] if client else "-",
        }
        for name, value in self.headers:
            environ["HTTP_" + name.replace("-", "_")] = value
        return environ


class ResponseInfo:
    """A response as gunicorn's access log and post_request hook read it."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self, cycle: Exchange) -> None:
        self.status = cycle.status
        self.sent = cycle.sent
        self.headers = [(_text(n), _text(v)) for n, v in cycle.headers_out]


def _text(value: Any) -> str:
    # What the application sent, valid or not (an invalid header was answered with a 500).
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class Answer:
    """A response the server wrote itself, as the access log reads a request cycle."""

    __slots__ = ("headers_out", "scope", "sent", "start_time", "status")

    def __init__(self, scope: dict[str, Any], status: int, sent: int = 0,
                 headers_out: Iterable[Any] = (), start_time: float = 0.0) -> None:
        self.scope = scope
        self.status = status
        self.sent = sent
        self.headers_out = headers_out
        # A refused head's time is not measured: it shows as (about) zero, as in gunicorn.
        self.start_time = start_time or time.perf_counter()


def head_scope(conn: Any) -> dict[str, Any] | None:
    """What ``RequestInfo`` reads of the request head an ``http.HttpProtocol`` is reading, for
    the line of a refused one: the request line as read (the target split at ``?`` only, cut at
    the line limit; no version if it was not read yet) and the fields read so far. None until
    the target was read: a line without a request line would tell nothing."""
    if not conn.url:
        return None
    raw_path, _, query = conn.url[: conn.line_limit or None].partition(b"?")
    version = conn.parser.get_http_version()
    return {
        "method": conn.parser.get_method().decode("latin-1"),
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "http_version": "" if version == "0.0" else version,
        "scheme": conn.scheme,
        "headers": conn.headers,
        "client": conn.client,
    }


def refusal(request: Any, status: int, message: str) -> Answer:
    """The server's error answer to ``request``: a request cycle whose place it takes (its
    body broke or came too slowly), or a refused head's ``head_scope``."""
    body = len(error_body(status, message))
    if isinstance(request, dict):
        return Answer(request, status, body, ERROR_HEADERS)
    return Answer(request.scope, status, body, ERROR_HEADERS, request.start_time)
