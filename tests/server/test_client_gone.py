"""Clients that leave, and graceful stops, under a real gunicorn master with the ASGIWorker.

ASGI spec 2.4 (the server's ``spec_version``): once the client is gone, ``send()`` raises
``OSError``; Starlette relies on it to stop a ``StreamingResponse`` and a WebSocket endpoint that
only sends. A graceful stop (SIGTERM) closes WebSockets with 1012 and lets HTTP requests in
flight finish.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import websockets
from gunicorn_helpers import Gunicorn
from helpers import wait_for
from leaving import (
    handshake_then_leave,
    leave_all,
    loud_lines,
    open_streams,
    stops_gracefully,
)

STREAMS = 5  # of each kind
EDGE_APPS = ("edge_apps:app", "--pythonpath", str(Path(__file__).parent))


async def test_starlette_streams_stop_when_their_clients_leave(gunicorn) -> None:
    server: Gunicorn = gunicorn("testproject.apps_starlette:app")
    streams = await open_streams(server.port, "", STREAMS)
    assert sorted(server.recorded("started")) == sorted(s.name for s in streams)
    await leave_all(streams, lambda: server.recorded("stopped"))
    assert loud_lines(server.log()) == [], server.log()


def test_websocket_whose_client_left_before_the_accept(gunicorn) -> None:
    # The application accepts after its client left: the accept is ignored, the application's
    # next receive() says websocket.disconnect, and a send() after it raises OSError.
    server: Gunicorn = gunicorn(*EDGE_APPS)
    handshake_then_leave(server.port, "/ws/late-accept?delay=0.3")
    wait_for(lambda: len(server.recorded("late-accept")) == 2, what="the application's end")
    assert server.recorded("late-accept") == ["websocket.disconnect:1006", "OSError:ClientGone"]
    assert loud_lines(server.log()) == [], server.log()


def test_legacy_consumer_replying_after_its_client_left(gunicorn) -> None:
    # The reply's send() raises (the client left): the adapter ends quietly, and the task that
    # wrote the reply leaves no "Task exception was never retrieved".
    server: Gunicorn = gunicorn("edge_apps:legacy_late", *EDGE_APPS[1:],
                                env={"CD_LEGACY_TIMEOUT": "10"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /?delay=0.3 HTTP/1.1\r\nHost: test\r\n\r\n")
    wait_for(lambda: server.recorded("legacy-late"), what="the late reply")
    wait_for(lambda: "after its client left" in server.log(), what="the adapter's end")
    assert loud_lines(server.log()) == [], server.log()


async def test_term_closes_websockets_with_1012_and_lets_http_in_flight_finish(gunicorn) -> None:
    server: Gunicorn = gunicorn("testproject.apps_server:echo")
    # The last application works on for a while once told of the disconnect, longer than the
    # HTTP request in flight lasts.
    sockets = [await websockets.connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=10)
               for path in ("/ws/echo", "/ws/echo", "/ws/linger?s=2.5")]
    for ws in sockets:
        await ws.send("ping")
        assert await ws.recv() == "ping"
    results: list = []
    thread = await asyncio.to_thread(server.request_in_flight, 2.0, results)
    await stops_gracefully(lambda: server.signal(signal.SIGTERM), server.port, sockets, thread,
                           results, (200, "slow done"))
    assert await asyncio.to_thread(server.wait) == 0
    assert server.recorded("ws-disconnect") == ["1012"] * 3
    assert server.recorded("ws-linger-done") == ["1012"]  # waited for, not cancelled
    assert loud_lines(server.log()) == [], server.log()
