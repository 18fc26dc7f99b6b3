"""Faults of Redis and of deploys, through the real edge and worker shells, in memory.

Entries lost in Redis (evicted: ``MemoryLink.lose`` drops an entry by its number), a request the
edge gave up while a worker ran it optimistically, an edge of the previous protocol version, and
a worker that stops with WebSockets open. ``tests/e2e`` checks the same against real processes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from channels_distributed.distributor.relay import serve_http, serve_websocket
from channels_distributed.exceptions import PeerLost
from channels_distributed.protocol.envelope import decode_connect, encode_connect
from tests.distributor.test_forwarding_shells import SCOPE, Client, assert_clean, http
from tests.helpers import wait_for_async
from tests.memlink import KEY, Deployment


class SlowClient(Client):
    """A client whose request body arrives a piece at a time (one entry each)."""

    async def receive(self) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return await super().receive()


def chunked_upload(pieces: int) -> tuple[dict[str, Any], Client]:
    scope = {**SCOPE, "method": "POST"}
    client = SlowClient(*({"type": "http.request", "body": b"x" * 10,
                           "more_body": i < pieces - 1} for i in range(pieces)))
    return scope, client


def reader(seen: list[Any]) -> Any:
    """An application that reads the whole body, then answers how much it read."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        size = 0
        while True:
            event = await receive()
            seen.append(event["type"])
            if event["type"] == "http.disconnect":
                return
            size += len(event.get("body", b""))
            if not event.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})
    return app


@pytest.mark.parametrize("lost", [1, 2])
async def test_a_body_piece_lost_in_redis_fails_the_request_and_tells_the_app(lost: int) -> None:
    """Never a short body delivered as whole: a missing piece in the middle is seen when the next
    one arrives; the last one missing is found by the worker's probe of the quiet stream."""
    seen: list[Any] = []
    deployment = Deployment(reader(seen), probe_after=0.05)
    worker = asyncio.ensure_future(deployment.serve())
    pieces = 3 if lost == 2 else 4  # the first piece travels with the request
    deployment.link.lose = {(deployment.worker_hub.inbox, lost)}
    scope, client = chunked_upload(pieces)
    await asyncio.wait_for(serve_http(deployment.edge, KEY, scope, client.receive, client.send), 5)
    assert client.status == 502
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert seen[-1] == "http.disconnect" and "http.response.start" not in str(client.sent[1:])
    worker.cancel()
    assert_clean(deployment)


async def test_a_response_piece_lost_in_redis_cuts_the_response() -> None:
    async def streamer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(4):
            await asyncio.sleep(0.005)
            await send({"type": "http.response.body", "body": b"y" * 10, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    deployment = Deployment(streamer)
    worker = asyncio.ensure_future(deployment.serve())
    deployment.link.lose = {(deployment.edge_hub.inbox, 3)}
    scope, client = http()
    with pytest.raises(PeerLost, match="were lost in Redis"):  # the server aborts the response
        await asyncio.wait_for(serve_http(deployment.edge, KEY, scope, client.receive,
                                          client.send), 5)
    assert client.status == 200 and len(client.body) < 40  # started, never completed
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    worker.cancel()
    assert_clean(deployment)


async def test_the_last_response_piece_lost_is_found_by_the_edges_probe() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"end"})

    deployment = Deployment(app, redis_timeout=0.05)
    worker = asyncio.ensure_future(deployment.serve())
    deployment.link.lose = {(deployment.edge_hub.inbox, 2)}
    scope, client = http()
    started = time.monotonic()
    with pytest.raises(PeerLost):
        await asyncio.wait_for(serve_http(deployment.edge, KEY, scope, client.receive,
                                          client.send), 5)
    assert client.body == b"" and time.monotonic() - started < 2
    worker.cancel()
    assert_clean(deployment)


async def test_a_request_given_up_while_it_ran_optimistically_is_503_at_once() -> None:
    """A worker takes an idempotent request just before its deadline and runs it before its
    acknowledgement; its first output (which carries the acknowledgement) reaches Redis after
    the edge gave the request up: the output is never delivered, and the client gets 503 at
    once (not 502 after the late-accept wait)."""
    runs: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        runs.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    deployment = Deployment(app, worker_timeout=0.05, redis_timeout=3.0)
    deployment.link.acked_pushes.clear()  # Redis runs the first output's script late
    scope, client = http("GET")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    await wait_for_async(lambda: deployment.link.given_up, what="the edge to give it up")
    given_up = time.monotonic()
    deployment.link.acked_pushes.set()
    await asyncio.wait_for(relay, 5)
    took = time.monotonic() - given_up
    assert client.status == 503 and client.body != b"too late" and runs == ["/"]
    assert took < 2.0, f"503 {took:.2f} s after the give-up: it waited for a late accept"
    await asyncio.gather(*deployment.connections)
    assert_clean(deployment)


async def test_a_worker_serves_an_edge_of_protocol_1_in_its_language() -> None:
    """A version 1 edge during a rolling upgrade: the worker answers with unnumbered entries."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"v1"})

    deployment = Deployment(app)
    scope, client = http("POST")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    connect = decode_connect(deployment.link.queue[0])
    connect.version = 1
    deployment.link.queue[0] = encode_connect(connect)
    assert deployment.take()
    await asyncio.wait_for(relay, 5)
    assert (client.status, client.body) == (200, b"v1")
    to_edge = [seq for inbox, seq in deployment.link.numbers if inbox == deployment.edge_hub.inbox]
    assert to_edge and set(to_edge) == {0}  # what a version 1 edge reads
    await asyncio.gather(*deployment.connections)
    assert_clean(deployment)


async def test_a_stopping_worker_closes_websockets_with_1012_after_telling_the_app() -> None:
    told: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                told.append(event)
                return

    deployment = Deployment(app)
    worker = asyncio.ensure_future(deployment.serve())
    scope = {**SCOPE, "type": "websocket", "path": "/ws"}
    client = Client({"type": "websocket.connect"})
    relay = asyncio.ensure_future(
        serve_websocket(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: client.sent, what="the accept")
    (connection,) = deployment.connection_objects
    connection.shutdown(1012)  # what Node._drain does on SIGTERM
    await asyncio.wait_for(relay, 5)
    assert client.sent[-1] == {"type": "websocket.close", "code": 1012,
                               "reason": "service restart"}
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert told == [{"type": "websocket.disconnect", "code": 1012, "reason": ""}]
    worker.cancel()
    assert_clean(deployment)
