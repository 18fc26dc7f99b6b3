"""What an upgraded connection keeps: its HTTP parsing state goes with the upgrade.

An open WebSocket lives on the ``HttpProtocol`` that upgraded it for as long as it stays open,
idle or not; the request parser, the pipeline and the header flags would be dead weight all
that time (bench/idle_ws.py measures what an idle connection costs). Served in this process
(``Server`` on a loopback socket), so the connection's object is at hand.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from websockets.asyncio.client import connect

from channels_distributed.conf.server import ServerConfig
from channels_distributed.server.server import Server
from tests.helpers import wait_for_async


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (event := await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": event["text"]})


async def test_an_upgraded_connection_drops_its_http_parsing_state() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = Server(echo, ServerConfig(), loop=asyncio.get_running_loop())
    server.start([listener])
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
            (conn,) = server.connections
            assert conn.ws is not None
            assert conn.parser is None and conn.scope_template is None and conn.url == b""
            assert len(conn.pipeline) == 0 and conn.flagged == {}
            await ws.send("two")  # the WebSocket itself is served as before
            assert await ws.recv() == "two"
        await wait_for_async(lambda: not server.connections, what="the connection closed")
    finally:
        await server.shutdown(graceful=False)
