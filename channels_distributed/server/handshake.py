"""The WebSocket handshake's parts: the ``websockets`` protocol as the server runs it, the
extensions it offers, and the ASGI scope of an upgrade request (``websocket.py`` runs the session).
"""

from __future__ import annotations

import functools
from typing import Any

from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

__all__ = ["ServerSide", "extensions", "request_headers", "websocket_scope"]


class ServerSide(ServerProtocol):
    """websockets' protocol, but a Close frame between the fragments of a message is a normal
    close (RFC 6455 section 5.4 lets control frames come between fragments; the Close ends the
    connection and the unfinished message with it): websockets answers 1002, and Autobahn's case
    7.1.5 expects 1000."""

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            # The size of the message being reassembled: current_size since websockets 16,
            # cur_size before. None means "no fragmented message in progress".
            setattr(self, "current_size" if hasattr(self, "current_size") else "cur_size", None)
        super().recv_frame(frame)


@functools.cache
def extensions(deflate: bool, window_bits: int) -> list[ServerPerMessageDeflateFactory] | None:
    """The extensions offered, one factory per setting for every connection: permessage-deflate
    with the window ``ws_deflate_window_bits`` both ways (the client's only when its offer lets
    the server choose, as browsers' do) and zlib's memLevel 5. zlib's defaults (window 15,
    memLevel 8) cost a compressed connection about 105 KiB more than one without compression;
    12 and 5 about 45 KiB (bench/ws_memory.py)."""
    if not deflate:
        return None
    return [ServerPerMessageDeflateFactory(
        server_max_window_bits=window_bits,
        client_max_window_bits=window_bits,
        compress_settings={"memLevel": 5},
    )]


def request_headers(scope: dict[str, Any]) -> Headers:
    headers = Headers()
    for name, value in scope["headers"]:
        headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers


def websocket_scope(scope: dict[str, Any], scheme: str) -> dict[str, Any]:
    protocols = []
    for name, value in scope["headers"]:
        if name == b"sec-websocket-protocol":
            protocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    secure = scope["scheme"] == "https" or scheme == "https"
    return {
        "type": "websocket",
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "scheme": "wss" if secure else "ws",
        "server": scope["server"],
        "client": scope["client"],
        "root_path": scope["root_path"],
        "path": scope["path"],
        "raw_path": scope["raw_path"],
        "query_string": scope["query_string"],
        "headers": scope["headers"],
        "subprotocols": protocols,
        "state": scope["state"],
        "extensions": {"websocket.http.response": {}},
    }
