"""Clients that leave, and the edge's graceful stop, through an edge served by gunicorn's
ASGIWorker and a worker, all real processes.

When the client leaves, the edge's relay finds out (its ``send()`` raises ``OSError``, or its
``receive()`` says so) and tells the worker, whose application's ``send()`` raises ``OSError``
in turn (ASGI spec 2.4): a Starlette stream stops. On SIGTERM the edge stops accepting, lets the
requests in flight finish, closes WebSockets with 1012, and the workers' applications are told.
"""

from __future__ import annotations

import asyncio
import signal
import time
from urllib.parse import urlsplit

import websockets
from deployment import Deployment
from helpers import wait_for
from leaving import (
    handshake_then_leave,
    leave_all,
    loud_lines,
    open_streams,
    request_in_flight,
    stops_gracefully,
)

STREAMS = 5  # of each kind


async def test_starlette_streams_in_a_worker_stop_when_their_clients_leave(
        private: Deployment) -> None:
    url, edge = private.gunicorn_edge()
    worker = private.worker("k-gone", app="testproject.apps_starlette:app")
    port = urlsplit(url).port or 80
    streams = await open_streams(port, "/k/gone", STREAMS)
    await leave_all(streams, lambda: private.recorded("stopped"))  # in the worker
    assert loud_lines(edge.output()) == [], edge.output()
    assert loud_lines(worker.output()) == [], worker.output()


def test_websocket_whose_client_left_before_a_worker_accepted(private: Deployment) -> None:
    # The client gives up while its connection waits for a worker: the worker that takes it
    # later runs its application, which is told websocket.disconnect; nobody logs an error.
    url, edge = private.gunicorn_edge(worker_timeout=15)
    tag = f"early{time.monotonic_ns()}"
    handshake_then_leave(urlsplit(url).port or 80, f"/k/early/ws?tag={tag}")
    worker = private.worker("k-early")
    marker = private.marker(f"ws-disconnected-{tag}")
    wait_for(marker.exists, what="websocket.disconnect in the worker's application")
    assert marker.read_text() == "1006"
    assert loud_lines(edge.output()) == [], edge.output()
    assert loud_lines(worker.output()) == [], worker.output()


async def test_term_on_the_edge_closes_websockets_with_1012_and_finishes_http(
        private: Deployment) -> None:
    url, edge = private.gunicorn_edge()
    worker = private.worker("t")
    tags = [f"g{i}x{time.monotonic_ns()}" for i in range(3)]
    ws_url = url.replace("http://", "ws://")
    sockets = [await websockets.connect(f"{ws_url}/ws/echo?tag={tag}", open_timeout=10)
               for tag in tags]
    for ws in sockets:
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
    results: list = []
    tag = f"s{time.monotonic_ns()}"
    thread = await asyncio.to_thread(request_in_flight, f"{url}/t/slow?s=2&tag={tag}",
                                     private.marker(f"slow-started-{tag}").exists, results)
    # The edge stops accepting: new clients are refused while the request in flight is served.
    await stops_gracefully(lambda: edge.signal(signal.SIGTERM), urlsplit(url).port or 80,
                           sockets, thread, results, (200, "slow done\n"))
    assert await asyncio.to_thread(edge.wait) == 0
    for tag in tags:  # the worker's application was told, with the code
        assert private.marker(f"ws-disconnected-{tag}").read_text() == "1012"
    assert loud_lines(edge.output()) == [], edge.output()
    assert loud_lines(worker.output()) == [], worker.output()
