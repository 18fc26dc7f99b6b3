"""Deploys with open WebSockets, with real processes: SIGTERM to a worker closes its WebSockets
at once with 1012 (service restart) after its application was told, lets HTTP requests in flight
finish, and leaves the channel layer working until its consumers ran ``disconnect()``; the
clients reconnect through the edge to the other worker and carry on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal
import time
from typing import Any

import httpx
import websockets
from deployment import MANAGE, Deployment
from helpers import WAIT, wait_for
from websockets.exceptions import ConnectionClosed


async def _close_code(ws: Any) -> int:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


async def _closed_code(ws: Any, timeout: float) -> int:
    """The close code the server sends this client within ``timeout`` (-1: closed without
    one; 0: still open)."""
    try:
        return await asyncio.wait_for(_close_code(ws), timeout)
    except asyncio.TimeoutError:
        return 0


def test_sigterm_closes_websockets_with_1012_and_lets_http_finish(private: Deployment) -> None:
    url = private.edge()
    leaving = private.worker("k-deploy")
    ws_url = url.replace("http://", "ws://") + "/k/deploy/ws"

    async def scenario() -> tuple[list[int], float, str]:
        sockets = [await websockets.connect(f"{ws_url}?tag=s{i}", open_timeout=WAIT)
                   for i in range(3)]
        for ws in sockets:
            await ws.send("before")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "echo:before"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(httpx.get, url + "/k/deploy/slow?s=2&tag=deploy", timeout=WAIT)
            await asyncio.to_thread(wait_for, private.marker("slow-started-deploy").exists,
                                    what="the slow request to run")
            stopped = time.monotonic()
            leaving.signal(signal.SIGTERM)
            codes = await asyncio.gather(*(_closed_code(ws, WAIT) for ws in sockets))
            took = time.monotonic() - stopped
            staying = await asyncio.to_thread(private.worker, "k-deploy")
            # The clients reconnect through the edge, to the worker that stays.
            async with websockets.connect(f"{ws_url}?tag=again", open_timeout=WAIT) as ws:
                await ws.send("after")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "echo:after"
                pid = ws.response.headers["x-worker-pid"]
            assert pid == str(staying.popen.pid)
            response = await asyncio.to_thread(slow.result, WAIT)
        return codes, took, response.text

    codes, took, body = asyncio.run(scenario())
    print(f"WebSockets closed {took:.2f} s after SIGTERM")
    assert codes == [1012, 1012, 1012]
    assert took < 3.0, f"closed {took:.2f} s after SIGTERM: not at once"
    assert body == "slow done\n"  # the HTTP request in flight finished
    for i in range(3):  # each application was told, with the code the client got
        assert private.marker(f"ws-disconnected-s{i}").read_text() == "1012"
    assert leaving.wait() == 0
    assert "Traceback" not in leaving.output(), leaving.output()


def _project(deployment: Deployment) -> tuple[str, dict[str, str]]:
    db = deployment.django_database("not-a-secret")
    url, _ = deployment.django_edge((200, 503), **db)  # 503: no worker yet
    return url, db


def test_a_runworker_deploy_leaves_the_chat_group_with_live_members_only(
        private: Deployment) -> None:
    """Two ``manage.py runworker chat tasks``; clients of the tutorial chat spread over both; one
    worker is deployed (SIGTERM). Its clients get 1012 at once, its consumers run
    ``disconnect()`` (``group_discard``) before the channel layer closes, so the group holds
    only live members; the clients reconnect to the other worker and chat on."""
    url, db = _project(private)
    workers = [private.spawn([*MANAGE, "runworker", "chat", "tasks"], f"worker-{n}", **db)
               for n in range(2)]
    for n, worker in enumerate(workers):
        private.wait_registered("chat", worker, count=n + 1)
    group = f"{private.prefix}:{{g:chat_deploy}}"
    base = url.replace("http://", "ws://") + "/ws/chat/deploy/"

    async def open_until_both(count: int) -> list[Any]:
        sockets = []
        for _ in range(count):
            sockets.append(await websockets.connect(base, open_timeout=WAIT))
        return sockets

    async def scenario() -> tuple[list[int], int, int]:
        sockets = await open_until_both(10)
        await asyncio.to_thread(wait_for, lambda: private.integer("ZCARD", group) == 10,
                                what="ten members in the group")
        workers[0].signal(signal.SIGTERM)
        codes = await asyncio.gather(*(_closed_code(ws, 3.0) for ws in sockets))
        left = [ws for ws, code in zip(sockets, codes) if code == 1012]
        kept = [ws for ws, code in zip(sockets, codes) if code != 1012]
        await asyncio.to_thread(workers[0].wait)
        members_after_exit = private.integer("ZCARD", group)
        again = [await websockets.connect(base, open_timeout=WAIT) for _ in left]
        everyone = kept + again
        await asyncio.to_thread(wait_for, lambda: private.integer("ZCARD", group) == len(everyone),
                                what="every live client in the group")
        await everyone[0].send(json.dumps({"message": "still here"}))
        got = [json.loads(await asyncio.wait_for(ws.recv(), WAIT))["message"]
               for ws in everyone]
        assert got == ["still here"] * len(everyone)
        for ws in everyone:
            await ws.close()
        return codes, len(left), members_after_exit

    codes, moved, members_after_exit = asyncio.run(scenario())
    assert 0 < moved < 10, f"the clients were not spread over both workers: {codes}"
    assert members_after_exit == 10 - moved, "the deployed worker left dead group members"
    assert workers[0].popen.returncode == 0
    assert "Traceback" not in workers[0].output(), workers[0].output()
