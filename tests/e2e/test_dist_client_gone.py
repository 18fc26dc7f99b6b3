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
import threading
import time
from urllib.parse import urlsplit

import httpx
import websockets
from deployment import Deployment
from helpers import wait_for, wait_for_async
from leaving import (
    closed_code,
    handshake_then_leave,
    loud_lines,
    open_events,
    open_websocket,
    refused,
)

STREAMS = 5  # of each kind


def _lines(deployment: Deployment, name: str) -> list[str]:
    path = deployment.marker(name)
    return path.read_text().split() if path.exists() else []


async def test_starlette_streams_in_a_worker_stop_when_their_clients_leave(
        private: Deployment) -> None:
    url, edge = private.gunicorn_edge()
    worker = private.worker("k-gone", app="testproject.apps_starlette:app")
    port = urlsplit(url).port or 80
    streams = [await open_events(port, f"/k/gone/events?tag={i}", f"sse-{i}")
               for i in range(STREAMS)]
    streams += [await open_websocket(port, f"/k/gone/push?tag={i}", f"ws-{i}",
                                     graceful=i % 2 == 0) for i in range(STREAMS)]
    assert _lines(private, "stopped") == []
    left = time.monotonic()
    for stream in streams:
        await stream.leave()
    await wait_for_async(lambda: len(_lines(private, "stopped")) == len(streams), timeout=10,
                         what=f"the generators to stop: {_lines(private, 'stopped')}")
    elapsed = time.monotonic() - left
    print(f"{len(streams)} streams in the worker stopped {elapsed * 1000:.0f} ms after their "
          "clients left")
    assert elapsed < 1.0
    assert sorted(_lines(private, "stopped")) == sorted(s.name for s in streams)
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


def _slow_request(url: str, deployment: Deployment, results: list) -> threading.Thread:
    tag = f"s{time.monotonic_ns()}"

    def run() -> None:
        try:
            response = httpx.get(f"{url}/t/slow?s=2&tag={tag}", timeout=30)
            results.append((response.status_code, response.text))
        except httpx.HTTPError as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(deployment.marker(f"slow-started-{tag}").exists, what="the slow request to start")
    return thread


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
    thread = await asyncio.to_thread(_slow_request, url, private, results)
    stopped = time.monotonic()
    edge.signal(signal.SIGTERM)
    closes = await asyncio.wait_for(
        asyncio.gather(*(closed_code(ws, stopped) for ws in sockets)), 10)
    slowest = max(seconds for _, seconds in closes)
    print(f"the edge's WebSockets closed {slowest * 1000:.0f} ms after SIGTERM")
    assert [code for code, _ in closes] == [1012] * 3
    assert slowest < 1.0  # at once, not after the HTTP request in flight
    # The edge stops accepting: new clients are refused while the request in flight is served.
    await wait_for_async(lambda: refused(urlsplit(url).port or 80), timeout=5,
                         what="connections refused")
    assert thread.is_alive()
    await asyncio.to_thread(thread.join, 20)
    assert results == [(200, "slow done\n")]  # finished, not cut
    assert await asyncio.to_thread(edge.wait) == 0
    for tag in tags:  # the worker's application was told, with the code
        assert private.marker(f"ws-disconnected-{tag}").read_text() == "1012"
    assert loud_lines(edge.output()) == [], edge.output()
    assert loud_lines(worker.output()) == [], worker.output()
