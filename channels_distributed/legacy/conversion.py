"""ASGI 1 (Channels 1) message formats <-> ASGI 3 events, sans-I/O.

A legacy consumer receives one ``http.request`` message carrying the whole request and answers
with response dicts (``status``, ``headers``, ``content``, ``more_content``); a WebSocket consumer
receives ``websocket.connect`` / ``websocket.receive`` / ``websocket.disconnect`` and answers with
``accept``, ``text``, ``bytes`` and ``close``. This module converts between those shapes and ASGI 3
events. It imports no asyncio, redis or django: two small state machines and pure functions.

Reference: the ASGI 1 message specification (asgiref 1.x ``docs/specs/www.rst``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from channels_distributed.exceptions import ProtocolError

__all__ = [
    "LegacyHttpResponse",
    "LegacyWebSocketReplies",
    "http_request_message",
    "websocket_connect_message",
    "websocket_disconnect_message",
    "websocket_receive_message",
]



def _pair(value: Any) -> list[Any] | None:
    return [value[0], value[1]] if value else None


def _common(scope: Mapping[str, Any], reply_channel: str) -> dict[str, Any]:
    return {
        "reply_channel": reply_channel,
        "path": scope["path"],
        "query_string": scope.get("query_string", b""),
        "root_path": scope.get("root_path", ""),
        "headers": [[name, value] for name, value in scope.get("headers", ())],
        "client": _pair(scope.get("client")),
        "server": _pair(scope.get("server")),
    }


def http_request_message(
    scope: Mapping[str, Any], body: bytes, reply_channel: str
) -> dict[str, Any]:
    """Build the ASGI 1 ``http.request`` message for an ASGI 3 ``http`` scope and its whole body."""
    if scope.get("type") != "http":
        raise ProtocolError(f"expected an 'http' scope, got {scope.get('type')!r}")
    message = _common(scope, reply_channel)
    # Item by item rather than update(**kwargs): this runs for every legacy request.
    message["http_version"] = scope.get("http_version", "1.1")
    message["method"] = scope["method"]
    message["scheme"] = scope.get("scheme", "http")
    message["body"] = body
    return message


def websocket_connect_message(scope: Mapping[str, Any], reply_channel: str) -> dict[str, Any]:
    """Build the ASGI 1 ``websocket.connect`` message for an ASGI 3 ``websocket`` scope."""
    if scope.get("type") != "websocket":
        raise ProtocolError(f"expected a 'websocket' scope, got {scope.get('type')!r}")
    message = _common(scope, reply_channel)
    message.update(scheme=scope.get("scheme", "ws"), order=0)
    return message


def websocket_receive_message(
    scope: Mapping[str, Any], event: Mapping[str, Any], reply_channel: str, order: int
) -> dict[str, Any]:
    """Convert an ASGI 3 ``websocket.receive`` event to the ASGI 1 ``websocket.receive`` message."""
    return {
        "reply_channel": reply_channel,
        "path": scope["path"],
        "order": order,
        "text": event.get("text"),
        "bytes": event.get("bytes"),
    }


def websocket_disconnect_message(
    scope: Mapping[str, Any], code: int, reply_channel: str, order: int
) -> dict[str, Any]:
    """Build the ASGI 1 ``websocket.disconnect`` message."""
    return {"reply_channel": reply_channel, "path": scope["path"], "code": code, "order": order}


def _headers(value: Any) -> list[tuple[bytes, bytes]]:
    # Exact-type tests first: the ABC isinstance() checks cost more than the rest of a header.
    kind = type(value)
    if kind is not list and kind is not tuple and (
        not isinstance(value, Iterable) or isinstance(value, (bytes, str, Mapping))
    ):
        raise ProtocolError(
            "response 'headers' must be a list of [name, value] byte pairs, "
            f"got {type(value).__name__}"
        )
    headers = []
    for item in value:
        try:
            name, header_value = item
        except (TypeError, ValueError):
            raise ProtocolError(f"response header {item!r} is not a [name, value] pair") from None
        if type(name) is not bytes:
            name = _as_bytes(name, "header name")
        if type(header_value) is not bytes:
            header_value = _as_bytes(header_value, "header value")
        headers.append((name, header_value))
    return headers


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # Channels 1 consumers commonly passed str header names; latin-1 is HTTP's byte mapping.
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ProtocolError(f"{what} {value!r} is not latin-1; encode it as bytes") from None
    raise ProtocolError(f"{what} must be bytes, got {type(value).__name__}")


def _content(message: Mapping[str, Any]) -> bytes:
    content = message.get("content", b"")
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise ProtocolError(
            f"response 'content' must be bytes, got {type(content).__name__}; encode text first"
        )
    return bytes(content)


class LegacyHttpResponse:
    """State machine of one legacy HTTP response: ``start`` -> ``streaming`` -> ``done``.

    ``feed(message)`` validates one ASGI 1 response dict and returns the ASGI 3 events for it.
    """

    # state -> whether a 'status' key is required (True) or refused (False); 'done' accepts nothing.
    _TRANSITIONS = {"start": True, "streaming": False}

    def __init__(self) -> None:
        self.state = "start"

    @property
    def started(self) -> bool:
        return self.state != "start"

    @property
    def done(self) -> bool:
        return self.state == "done"

    def feed(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        needs_status = self._TRANSITIONS.get(self.state)
        if needs_status is None:
            raise ProtocolError(
                "response already complete (an earlier message had more_content=False); "
                "send nothing after the last chunk"
            )
        more = bool(message.get("more_content", False))
        body: dict[str, Any] = {"type": "http.response.body", "body": _content(message),
                                "more_body": more}
        self.state = "streaming" if more else "done"
        if not needs_status:
            return [body]
        return [self._start(message), body]

    @staticmethod
    def _start(message: Mapping[str, Any]) -> dict[str, Any]:
        status = message.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
            raise ProtocolError(
                f"the first response message needs an integer 'status' (100-999), got {status!r}"
            )
        headers = _headers(message.get("headers", []))
        return {"type": "http.response.start", "status": status, "headers": headers}


class LegacyWebSocketReplies:
    """State machine of legacy WebSocket replies: ``connecting`` -> ``open`` -> ``closed``."""

    def __init__(self) -> None:
        self.state = "connecting"

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def feed(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.state == "closed":
            raise ProtocolError("the WebSocket is already closed; send nothing after 'close'")
        unknown = set(message) - {"accept", "text", "bytes", "close"}
        if unknown:
            raise ProtocolError(
                f"unknown WebSocket reply keys {sorted(unknown)}; use accept, text, bytes or close"
            )
        events: list[dict[str, Any]] = []
        accept = message.get("accept")
        if accept is False and self.state == "connecting":
            self.state = "closed"
            return [{"type": "websocket.close", "code": 1000}]
        data = self._data(message)
        if self.state == "connecting" and (accept or data):
            # ASGI 1: sending text or bytes to a pending connection accepts it implicitly.
            events.append({"type": "websocket.accept"})
            self.state = "open"
        if data:
            events.append(data)
        events.extend(self._close(message))
        return events

    @staticmethod
    def _data(message: Mapping[str, Any]) -> dict[str, Any] | None:
        text, data = message.get("text"), message.get("bytes")
        if text is not None and data is not None:
            raise ProtocolError("a WebSocket reply carries 'text' or 'bytes', not both")
        if text is not None:
            if not isinstance(text, str):
                raise ProtocolError(f"'text' must be str, got {type(text).__name__}")
            return {"type": "websocket.send", "text": text}
        if data is not None:
            if not isinstance(data, (bytes, bytearray)):
                raise ProtocolError(f"'bytes' must be bytes, got {type(data).__name__}")
            return {"type": "websocket.send", "bytes": bytes(data)}
        return None

    def _close(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        close = message.get("close")
        if not close:
            return []
        code = 1000 if close is True else close
        if isinstance(code, bool) or not isinstance(code, int):
            raise ProtocolError(f"'close' must be True or an integer close code, got {close!r}")
        self.state = "closed"
        return [{"type": "websocket.close", "code": code}]
