"""Clients that leave, and clients of a server that stops: a server-sent events stream and
WebSocket connections read from for a moment, then dropped (the tests of ``send()`` raising
``OSError`` once the client is gone, under gunicorn's ASGIWorker and through the edge), a
WebSocket handshake sent by a client that does not wait for the answer, and what clients see of
a graceful stop."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed


class Stream:
    """An open HTTP stream or WebSocket, and how it leaves."""

    def __init__(self, name: str, leave: Any) -> None:
        self.name = name
        self._leave = leave

    async def leave(self) -> None:
        await self._leave()


async def open_events(port: int, path: str, name: str) -> Stream:
    """A GET of a never-ending response: returns once its first chunk arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await reader.readuntil(b"data: tick")

    async def leave() -> None:
        writer.transport.abort()  # the client closes its socket mid-stream

    return Stream(name, leave)


async def open_websocket(port: int, path: str, name: str, graceful: bool) -> Stream:
    """A WebSocket that only receives: returns once its first message arrived. It leaves with
    a closing handshake (``graceful``) or by closing its socket."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10)
    assert await ws.recv() == "tick"

    async def leave() -> None:
        if graceful:
            await ws.close(code=1001, reason="going away")
        else:
            ws.transport.abort()

    return Stream(name, leave)


def handshake_then_leave(port: int, path: str) -> None:
    """Send a WebSocket handshake and close the socket without reading the answer: a client that
    gave up while its connection waited in the listen backlog, or before the edge found a worker.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .encode())


def refused(port: int) -> bool:
    """Whether a connection to ``port`` is refused (nothing listens any more)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def closed_code(ws: websockets.ClientConnection, since: float) -> tuple[int, float]:
    """The code of the Close frame that ends ``ws``, and the seconds from ``since`` to it."""
    try:
        await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a Close frame"
        return closed.rcvd.code, time.monotonic() - since
    raise AssertionError("a message arrived instead of the Close frame")


def loud_lines(log: str) -> list[str]:
    """The lines of ``log`` above INFO, and tracebacks (both log formats of the suite)."""
    marks = ("[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback")
    return [line for line in log.splitlines() if any(mark in line for mark in marks)]
