"""Clients that leave, and clients of a server that stops: a server-sent events stream and
WebSocket connections read from for a moment, then dropped (the tests of ``send()`` raising
``OSError`` once the client is gone, under gunicorn's ASGIWorker and through the edge), a
WebSocket handshake sent by a client that does not wait for the answer, and what clients see of
a graceful stop (a request in flight, new connections refused, the WebSockets' Close frame)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from helpers import wait_for, wait_for_async
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


async def open_streams(port: int, path: str, count: int) -> list[Stream]:
    """``count`` event streams and ``count`` WebSockets of ``testproject.apps_starlette`` served
    under ``path`` (every other WebSocket leaves with a closing handshake), each tagged with its
    name."""
    streams = [await open_events(port, f"{path}/events?tag={i}", f"sse-{i}")
               for i in range(count)]
    streams += [await open_websocket(port, f"{path}/push?tag={i}", f"ws-{i}",
                                     graceful=i % 2 == 0) for i in range(count)]
    return streams


async def leave_all(streams: list[Stream], stopped: Callable[[], list[str]]) -> None:
    """Every client of ``streams`` leaves; the application's generators (``stopped()``: the
    names of those that stopped) must all stop within 1 s."""
    assert stopped() == []
    left = time.monotonic()
    for stream in streams:
        await stream.leave()
    await wait_for_async(lambda: len(stopped()) == len(streams), timeout=10,
                         what=f"the generators to stop: {stopped()}")
    elapsed = time.monotonic() - left
    print(f"{len(streams)} streams stopped {elapsed * 1000:.0f} ms after their clients left")
    assert elapsed < 1.0
    assert sorted(stopped()) == sorted(s.name for s in streams)


def handshake_then_leave(port: int, path: str) -> None:
    """Send a WebSocket handshake and close the socket without reading the answer: a client that
    gave up while its connection waited in the listen backlog, or before the edge found a worker.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .encode())


def request_in_flight(url: str, started: Callable[[], object], results: list[Any],
                      headers: dict[str, str] | None = None) -> threading.Thread:
    """GET ``url`` (a slow response) in a thread of its own, which appends ``(status, text)``,
    or the ``httpx.HTTPError`` that cut it, to ``results``; returns the thread once
    ``started()`` says the application runs the request."""
    def run() -> None:
        try:
            response = httpx.get(url, headers=headers, timeout=30)
            results.append((response.status_code, response.text))
        except httpx.HTTPError as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(started, what="the slow request to start")
    return thread


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


async def stops_gracefully(stop: Callable[[], object], port: int, sockets: list[Any],
                           in_flight: threading.Thread, results: list[Any],
                           answer: tuple[int, str]) -> None:
    """``stop()`` (a SIGTERM) the server on ``port`` while ``sockets`` are open and a request is
    in flight (``request_in_flight``), and check what its clients see: each WebSocket closed at
    once with 1012 (service restart), new connections refused while the request in flight is
    still served, then its whole ``answer``."""
    stopped = time.monotonic()
    stop()
    closes = await asyncio.wait_for(
        asyncio.gather(*(closed_code(ws, stopped) for ws in sockets)), 10)
    slowest = max(seconds for _, seconds in closes)
    print(f"WebSockets closed {slowest * 1000:.0f} ms after SIGTERM")
    assert [code for code, _ in closes] == [1012] * len(sockets)
    assert slowest < 1.0  # at once, not after the HTTP request in flight
    # New clients are refused at once, not left waiting in a backlog that nobody reads.
    await wait_for_async(lambda: refused(port), timeout=5, what="connections refused")
    assert in_flight.is_alive()  # while the request in flight is still served
    await asyncio.to_thread(in_flight.join, 20)
    assert results == [answer]  # finished, not cut


def loud_lines(log: str) -> list[str]:
    """The lines of ``log`` above INFO, and tracebacks (both log formats of the suite)."""
    marks = ("[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback")
    return [line for line in log.splitlines() if any(mark in line for mark in marks)]
