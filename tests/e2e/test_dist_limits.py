"""The limits docs/distributed.rst tells users to size (and ``--help`` of the workers): an open
WebSocket holds one of its worker's ``--concurrency`` slots for as long as it is open, and one
of the edge's gunicorn ``--worker-connections``, idle or not."""

from __future__ import annotations

import asyncio
import select
import socket
import sys
from pathlib import Path

import async_timeout  # asyncio.timeout() needs Python 3.11
import httpx
import pytest
import websockets
from deployment import Deployment, answers
from helpers import wait_for
from websockets.exceptions import ConnectionClosed

from channels_distributed.embedded import free_port


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)


async def test_open_websockets_hold_the_workers_concurrency_slots(private: Deployment) -> None:
    url = private.edge(worker_timeout=1)
    ws = url.replace("http://", "ws://") + "/k/slots/ws"
    private.worker("k-slots", args=("--concurrency", "2"))
    async with async_timeout.timeout(40), websockets.connect(ws) as first, \
            websockets.connect(ws) as second:
        for client in (first, second):
            await client.send("idle")
            assert await client.recv() == "echo:idle"
        # Two idle sockets hold both slots: no worker takes a third connection.
        async with websockets.connect(ws) as third:
            with pytest.raises(ConnectionClosed) as closed:
                await third.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        busy = await asyncio.to_thread(_get, url + "/k/slots/hello")
        assert busy.status_code == 503
    # Closed: their slots are free again.
    await asyncio.to_thread(wait_for, lambda: _get(url + "/k/slots/hello").status_code == 200,
                            what="the worker to take requests once the sockets closed")


_HANDSHAKE = (b"GET /k/conns/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")


async def test_open_websockets_count_against_the_edges_worker_connections(
        private: Deployment) -> None:
    port = free_port()
    edge = private.spawn([str(Path(sys.executable).with_name("gunicorn")), "testproject.edge:app",
                          "--bind", f"127.0.0.1:{port}", "--worker-class",
                          "channels_distributed.gunicorn.ASGIWorker", "--workers", "1",
                          "--worker-connections", "2", "--log-level", "warning"], "edge",
                         CD_WORKER_TIMEOUT="5")
    private.worker("k-conns")
    url = f"ws://127.0.0.1:{port}/k/conns/ws"

    await asyncio.to_thread(
        wait_for, lambda: answers(f"http://127.0.0.1:{port}", edge, "/k/conns/hello", (200,), 30),
        what="the gunicorn edge")
    async with async_timeout.timeout(40):
        first = await websockets.connect(url)
        async with websockets.connect(url) as second:
            for client in (first, second):
                await client.send("idle")
                assert await client.recv() == "echo:idle"
            # Two idle sockets are the edge's two connections: a third is not even accepted.
            third = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                third.sendall(_HANDSHAKE)
                assert not select.select([third], [], [], 1.0)[0], "answered at the limit"
                logged = edge.output()  # at --log-level warning: nothing says why it waits
                assert "[WARNING]" not in logged and "[ERROR]" not in logged, logged
                await first.close()  # a connection ends: the edge accepts the waiting one
                assert third.recv(4096).startswith(b"HTTP/1.1 101 ")
            finally:
                third.close()
