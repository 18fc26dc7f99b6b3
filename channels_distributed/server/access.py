"""A request and its response as gunicorn's access log and request hooks read them.

gunicorn's logger and its ``pre_request``/``post_request`` hooks were written for its own request
and response objects: ``RequestInfo`` and ``ResponseInfo`` carry the attributes they use, built
from an ASGI scope and a finished request cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["Exchange", "RequestInfo", "ResponseInfo"]


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

    def __init__(self, cycle: Exchange) -> None:
        self.status = cycle.status
        self.sent = cycle.sent
        self.headers = [(_text(n), _text(v)) for n, v in cycle.headers_out]


def _text(value: Any) -> str:
    # What the application sent, valid or not (an invalid header was answered with a 500).
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
