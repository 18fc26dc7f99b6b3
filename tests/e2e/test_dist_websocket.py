"""WebSocket end to end: websockets client -> uvicorn + distributor -> Redis -> worker."""

from __future__ import annotations

import time

import async_timeout  # asyncio.timeout() needs Python 3.11
import pytest
import websockets
from deployment import Deployment
from helpers import wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus


def ws_url(deployment: Deployment, path: str) -> str:
    return deployment.url.replace("http://", "ws://") + path  # type: ignore[attr-defined]


async def test_accept_with_subprotocol_and_headers(shared: Deployment) -> None:
    async with async_timeout.timeout(20), websockets.connect(ws_url(shared, "/ws/echo"),
                                  subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "two"
        assert ws.response is not None
        assert ws.response.headers["x-worker-pid"].isdigit()


@pytest.mark.core
async def test_text_and_bytes_both_ways(shared: Deployment) -> None:
    async with async_timeout.timeout(20), websockets.connect(ws_url(shared, "/ws/echo")) as ws:
        for i in range(20):
            await ws.send(f"hello {i}")
            assert await ws.recv() == f"echo:hello {i}"
        await ws.send(b"\x00\xffbin")
        assert await ws.recv() == b"echo:\x00\xffbin"


async def test_many_frames_in_flight(shared: Deployment) -> None:
    async with async_timeout.timeout(30), websockets.connect(ws_url(shared, "/ws/echo")) as ws:
        for i in range(300):
            await ws.send(f"m{i}")
        got = [await ws.recv() for _ in range(300)]
    assert got == [f"echo:m{i}" for i in range(300)]


async def test_app_closes_with_code_and_reason(shared: Deployment) -> None:
    async with async_timeout.timeout(20), websockets.connect(ws_url(shared, "/ws/echo")) as ws:
        await ws.send("close:4001:bye now")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye now")


async def test_reject_before_accept_is_403(shared: Deployment) -> None:
    async with async_timeout.timeout(20):
        with pytest.raises(InvalidStatus) as rejected:
            await websockets.connect(ws_url(shared, "/ws/reject"))
    assert rejected.value.response.status_code == 403


async def test_unrouted_websocket_is_refused(shared: Deployment) -> None:
    async with async_timeout.timeout(20):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(shared, "/nowhere"))
    assert refused.value.response.status_code in (403, 404)


async def test_websocket_path_with_control_characters_is_refused(shared: Deployment) -> None:
    before = set(shared.redis_keys())
    async with async_timeout.timeout(20):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(shared, "/ws/echo%0a"))
    # 400 where the server has the websocket.http.response extension, else 403.
    assert refused.value.response.status_code in (400, 403)
    assert set(shared.redis_keys()) == before


@pytest.mark.parametrize("code", [1000, 4002])
async def test_client_close_code_reaches_the_app(shared: Deployment, code: int) -> None:
    tag = f"c{code}x{time.monotonic_ns()}"
    async with async_timeout.timeout(20):
        ws = await websockets.connect(ws_url(shared, f"/ws/echo?tag={tag}"))
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        await ws.close(code=code, reason="client leaving")
    marker = shared.marker(f"ws-disconnected-{tag}")
    wait_for(marker.exists, what="websocket.disconnect in the app")
    assert marker.read_text() == str(code)


async def test_http_response_to_a_websocket_is_logged_by_the_worker(private: Deployment) -> None:
    url = private.edge().replace("http://", "ws://")
    worker = private.worker("k-wshttp")
    async with async_timeout.timeout(20):
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            async with websockets.connect(url + "/k/wshttp/ws/http-response") as ws:
                await ws.recv()
    # The worker names the application and what it sent, where its developer looks.
    wait_for(lambda: "testproject.workers:app" in worker.output(), what="the worker's log")
    assert "'http.response.start'" in worker.output()
    edge = private.procs[0].output()
    assert "http.response.start" not in edge  # the edge never received it
@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
async def test_close_reasons_travel_both_ways(private: Deployment, server: str) -> None:
    # The client's Close reason reaches the worker's application in websocket.disconnect (ASGI),
    # and the application's reaches the client, through either edge server.
    url = private.edge(server=server).replace("http://", "ws://")
    private.worker("t")
    tag = f"r{time.monotonic_ns()}"
    async with async_timeout.timeout(20):
        ws = await websockets.connect(f"{url}/ws/echo?tag={tag}")
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        await ws.close(code=4003, reason="client leaving")
        async with websockets.connect(f"{url}/ws/echo?tag={tag}x") as ws:
            await ws.send("close:4001:bye now")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye now")
    marker = private.marker(f"ws-disconnected-{tag}")
    wait_for(marker.exists, what="websocket.disconnect in the app")
    assert marker.read_text() == "4003"
    assert private.marker(f"ws-reason-{tag}").read_text() == "'client leaving'"
    closed_by_app = private.marker(f"ws-closed-{tag}x")
    wait_for(closed_by_app.exists, what="websocket.disconnect after the app's close")
    assert closed_by_app.read_text() == "4001 'bye now'"
