"""A worker's application learns that its client left from ``send()`` raising ``OSError`` (ASGI
spec 2.4), even when it never reads ``receive()``: in memory, with the edge's relay
(``distributor/relay.py``) and a worker's ``Connection`` over ``tests/memlink.py``. The process
tests (tests/e2e/test_dist_client_gone.py) check the same with a Starlette application."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.distributor.relay import serve_http, serve_websocket
from tests.helpers import wait_for_async
from tests.memlink import KEY, Deployment

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"memory")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
}


class Client:
    """The ASGI server's side of one connection at the edge: once ``left``, its ``send()`` raises
    ``OSError``, as the ASGIWorker's does."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in events:
            self.incoming.put_nowait(event)
        self.gate = asyncio.Event()  # cleared: send() waits (a client that reads slowly)
        self.left = False

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, event: dict[str, Any]) -> None:
        await self.gate.wait()
        if self.left:
            raise ConnectionResetError("the client left")


def _push_only(told: list[BaseException], kind: str) -> Any:
    """An application that sends until send() raises, and never calls receive() after the
    handshake."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            if kind == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})
            else:
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
            while True:
                if kind == "http":
                    await send({"type": "http.response.body", "body": b"x", "more_body": True})
                else:
                    await send({"type": "websocket.send", "text": "x"})
        except OSError as exc:
            told.append(exc)

    return app


async def test_the_edge_failing_to_send_tells_a_streaming_application() -> None:
    # The client reads slowly (the application waits for credit), then is gone: the edge's
    # send() raises, its relay ends quietly, and the application's blocked send() raises.
    told: list[BaseException] = []
    deployment = Deployment(_push_only(told, "http"), window=2)
    client = Client({"type": "http.request", "body": b"", "more_body": False})
    relay = asyncio.ensure_future(serve_http(deployment.edge, KEY, SCOPE, client.receive,
                                             client.send))
    await wait_for_async(deployment.take, what="the request taken")
    await wait_for_async(lambda: deployment.edge_watch.watched, what="the worker accepted")
    client.left = True
    client.gate.set()
    await asyncio.wait_for(relay, 5)  # no exception: a client that left is no error
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert len(told) == 1 and isinstance(told[0], OSError)
    await deployment.close()


async def test_a_push_only_websocket_application_is_told_its_client_left() -> None:
    told: list[BaseException] = []
    deployment = Deployment(_push_only(told, "websocket"), window=2)
    scope = {**SCOPE, "type": "websocket", "scheme": "ws"}
    client = Client({"type": "websocket.connect"})
    client.gate.set()
    relay = asyncio.ensure_future(serve_websocket(deployment.edge, KEY, scope, client.receive,
                                                  client.send))
    await wait_for_async(deployment.take, what="the request taken")
    await wait_for_async(lambda: deployment.edge_watch.watched, what="the worker accepted")
    client.gate.clear()  # the application fills its window and waits for credit
    client.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert len(told) == 1 and isinstance(told[0], OSError)
    client.gate.set()
    await asyncio.wait_for(relay, 5)
    await deployment.close()


async def test_a_websocket_accepted_after_its_client_left_is_told_by_receive() -> None:
    # The accept of a client that already left is dropped (not an OSError): the application's
    # next receive() says websocket.disconnect, so that its disconnect handling runs.
    proceed = asyncio.Event()
    told: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await proceed.wait()
        await send({"type": "websocket.accept"})
        told.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            told.append(exc)

    deployment = Deployment(app)
    scope = {**SCOPE, "type": "websocket", "scheme": "ws"}
    client = Client({"type": "websocket.connect"},
                    {"type": "websocket.disconnect", "code": 1006, "reason": ""})
    client.gate.set()
    relay = asyncio.ensure_future(serve_websocket(deployment.edge, KEY, scope, client.receive,
                                                  client.send))
    await wait_for_async(deployment.take, what="the request taken")
    await wait_for_async(
        lambda: any(peer.failure for peer in deployment.worker_hub.peers.values()),
        timeout=5, what="the worker told that the client left")
    proceed.set()
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert told[0] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert isinstance(told[1], OSError)
    await asyncio.wait_for(relay, 5)
    await deployment.close()
