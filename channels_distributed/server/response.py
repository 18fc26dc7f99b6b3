"""Response bytes every part of the server writes: status lines, the checks of the header fields
an application sends (each distinct field checked once), and a server's own plain error answer.

Kept apart from ``cycle.py``, which frames responses with them, so that the connection (error
answers) and the WebSocket session (denial responses) write them without importing the cycle.
"""

from __future__ import annotations

import http
import re
from typing import Any

__all__ = [
    "CONNECTION",
    "DATE",
    "ERROR_HEADERS",
    "KNOWN_NAMES",
    "KNOWN_VALUES",
    "LENGTH",
    "TE",
    "ResponseError",
    "error_body",
    "error_response",
    "header_kind",
    "parse_length",
    "status_line",
]

_STATUS_LINES = {
    int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode("ascii")) for s in http.HTTPStatus
}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def error_body(status: int, message: str) -> bytes:
    """The body of ``error_response``."""
    return f"{status} {message}\n".encode("utf-8", "replace")


# The fields of error_response, as the access log shows them (%({name}o)s).
ERROR_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"))


def error_response(status: int, message: str, date_line: bytes, server_line: bytes) -> bytes:
    """The server's own answer to a request it refuses: ``status``, ``message`` as plain text,
    and ``connection: close``."""
    body = error_body(status, message)
    return (
        status_line(status)
        + b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        + b"content-length: %d\r\n%b%b\r\n%b" % (len(body), date_line, server_line, body)
    )


class ResponseError(RuntimeError):
    """The application sent an invalid response (answered with 500 or by closing)."""


# One C-level scan per field instead of five ``in`` tests (once per distinct field, see below).
_BAD_VALUE = re.compile(rb"[\r\n\x00]").search
_BAD_NAME = re.compile(rb"[\r\n\x00:]").search


# Response headers the server looks at; any other is copied as it is.
LENGTH, TE, CONNECTION, DATE, SERVER = 1, 2, 3, 4, 5
_SPECIAL = {
    b"content-length": LENGTH,
    b"transfer-encoding": TE,
    b"connection": CONNECTION,
    b"date": DATE,
    b"server": SERVER,
}


# Response header names and values already checked. An application sends the same few fields
# with every response, so each distinct one is checked (and its name classified) once instead of
# per response. Only exact bytes are remembered (a bytes subclass could change its hash); short
# values only, and both caches are emptied when full (never replaced: cycle.py holds them), so
# their memory stays bounded.
KNOWN_NAMES: dict[bytes, int] = {}  # name -> its _SPECIAL code, 0 for any other
KNOWN_VALUES: set[bytes] = set()
_KNOWN_LIMIT, _KNOWN_VALUE_SIZE = 512, 64


def header_kind(name: Any, value: Any) -> int:
    """Check a response header field not seen before; return its name's _SPECIAL code (or 0)."""
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise ResponseError(f"response header {name!r}: {value!r} must be a pair of bytes")
    if _BAD_VALUE(value) is not None or _BAD_NAME(name) is not None:
        raise ResponseError(f"response header {name!r} contains CR, LF, NUL or ':'")
    kind = _SPECIAL.get(name.lower(), 0)
    if type(name) is bytes and type(value) is bytes:
        if len(KNOWN_NAMES) >= _KNOWN_LIMIT:
            KNOWN_NAMES.clear()
        KNOWN_NAMES[name] = kind
        if len(value) <= _KNOWN_VALUE_SIZE:
            if len(KNOWN_VALUES) >= _KNOWN_LIMIT:
                KNOWN_VALUES.clear()
            KNOWN_VALUES.add(value)
    return kind


def parse_length(value: bytes) -> int:
    if not value.isdigit():
        raise ResponseError(f"invalid Content-Length {value!r} in the response")
    return int(value)
