"""What an open, idle WebSocket keeps on both sides of the forwarding, in memory.

Thousands of WebSockets may stay open and idle for hours, so each one's state is kept to what
it needs to go on: once the handshake and an exchange are over, neither peer holds an inbound
buffer, the edge's peer no longer holds the future its accept resolved, and the worker's
connection no longer holds the queue entry it acknowledged (``bench/idle_ws.py`` measures the
memory). The connection still works after that, and ends clean.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.distributor.relay import serve_websocket
from channels_distributed.worker.connection import Connection
from tests.distributor.test_forwarding_shells import SCOPE, Client, assert_clean
from tests.helpers import wait_for_async
from tests.memlink import KEY, Deployment


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (event := await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": event["text"]})


def _echoed(client: Client, text: str) -> bool:
    return any(event.get("text") == text for event in client.sent)


async def test_an_idle_websocket_keeps_no_buffer_accept_or_queue_entry() -> None:
    deployment = Deployment(echo)
    worker = asyncio.ensure_future(deployment.serve())
    scope = {**SCOPE, "type": "websocket", "scheme": "ws"}
    client = Client({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "one"})
    relay = asyncio.ensure_future(
        serve_websocket(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: _echoed(client, "one"), what="the first echo")
    (edge_peer,) = deployment.edge_hub.peers.values()
    (worker_peer,) = deployment.worker_hub.peers.values()
    for peer in (edge_peer, worker_peer):
        assert peer.receive_nowait() is None
        assert peer._inbound is None  # no empty buffer kept while idle
    assert edge_peer.accepted is None
    connection = worker_peer.owner
    assert isinstance(connection, Connection)
    assert connection.raw == b"" and worker_peer.ack_target is None

    client.incoming.put_nowait({"type": "websocket.receive", "text": "two"})
    await wait_for_async(lambda: _echoed(client, "two"), what="the echo after idling")
    client.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(relay, 5)
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert_clean(deployment)
    worker.cancel()
    await deployment.close()
