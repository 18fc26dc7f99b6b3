"""The package's own small answers over ASGI ``send``: a plain-text HTTP response, and the
refusal of a WebSocket handshake (the same response, where the server can send one).

Every answer the package makes up itself goes through here (the distributor's 404, 502 and 503,
a legacy consumer that never answered, the gunicorn worker's page after a failed reload), so
they all carry the same headers.
"""

from __future__ import annotations

from .typing import Scope, Send

__all__ = ["deny_websocket", "send_plain"]

_TEXT = (b"content-type", b"text/plain; charset=utf-8")


def _headers(body: bytes, retry_after: int | None) -> list[tuple[bytes, bytes]]:
    headers = [_TEXT, (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return headers


async def send_plain(send: Send, status: int, body: bytes, retry_after: int | None = None) -> None:
    """A small plain-text HTTP response: ``status``, then ``body`` whole (``retry_after``: the
    seconds a client should wait before it tries again, as ``Retry-After``)."""
    await send({"type": "http.response.start", "status": status,
                "headers": _headers(body, retry_after)})
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(scope: Scope, send: Send, status: int, body: bytes, close_code: int,
                         retry_after: int | None = None) -> None:
    """Refuse a WebSocket handshake: with ``status`` and ``body`` as plain text where the server
    can answer it with an HTTP response (the ``websocket.http.response`` extension), else by
    closing it with ``close_code`` (the server then answers 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": close_code})
        return
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": _headers(body, retry_after)})
    await send({"type": "websocket.http.response.body", "body": body})
