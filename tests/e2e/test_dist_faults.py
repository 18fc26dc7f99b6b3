"""Faults with real processes: no worker, a full route queue, kill -9, SIGTERM drain, rolling
restart, Redis restart, a worker at its concurrency limit, and requests of a dead worker given
back to the queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
import time

import async_timeout  # asyncio.timeout() needs Python 3.11
import httpx
import pytest
import websockets
from deployment import Deployment
from helpers import wait_for
from websockets.exceptions import ConnectionClosed

from channels_distributed.protocol.envelope import Connect, encode_connect

TIMEOUT = httpx.Timeout(30.0)


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT)


def llen(deployment: Deployment, key: str) -> int:
    return deployment.integer("LLEN", f"{deployment.prefix}:{{rt:{key}}}:q")


@pytest.mark.core
def test_no_worker_is_503_and_the_request_never_runs_later(private: Deployment) -> None:
    url = private.edge(worker_timeout=0.5)
    response = get(url + "/k/late/mark?tag=never")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert llen(private, "k-late") == 0  # withdrawn from the queue
    private.worker("k-late")
    assert get(url + "/k/late/mark?tag=later").status_code == 200
    assert private.marker("ran-later").exists()
    assert not private.marker("ran-never").exists()


async def test_no_worker_closes_websocket_with_1013(private: Deployment) -> None:
    url = private.edge(worker_timeout=0.5).replace("http://", "ws://")
    async with async_timeout.timeout(20), websockets.connect(url + "/k/nows/ws") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


def test_full_route_queue_is_503_at_once_and_keeps_what_it_holds(private: Deployment) -> None:
    url = private.edge(worker_timeout=20, queue_capacity=2)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        queued = [pool.submit(get, url + f"/k/full/mark?tag=queued{i}") for i in range(2)]
        wait_for(lambda: llen(private, "k-full") == 2, what="two requests on the route key")
        started = time.monotonic()
        over = get(url + "/k/full/mark?tag=over")
        assert over.status_code == 503
        assert over.headers["retry-after"] == "1"
        # Refused at once (the queue said so), not after waiting worker_timeout for a worker.
        assert time.monotonic() - started < 10
        private.worker("k-full")
        assert [f.result(timeout=30).status_code for f in queued] == [200, 200]
    assert private.marker("ran-queued0").exists() and private.marker("ran-queued1").exists()
    assert not private.marker("ran-over").exists()


def test_worker_drops_requests_past_their_deadline(private: Deployment) -> None:
    url = private.edge()
    stale = Connect(conn="stale", scope={"type": "http", "path": "/k/dl/mark",
                                         "query_string": b"tag=stale", "headers": []},
                    reply=f"{private.prefix}:{{p:gone}}:in", origin="gone", deadline_ms=1)
    private.redis.command("RPUSH", f"{private.prefix}:{{rt:k-dl}}:q", encode_connect(stale))
    private.worker("k-dl")
    assert get(url + "/k/dl/mark?tag=fresh").status_code == 200  # queued behind the stale one
    assert llen(private, "k-dl") == 0
    assert not private.marker("ran-stale").exists()


@pytest.mark.core
def test_requests_of_a_dead_worker_go_back_to_the_queue(private: Deployment) -> None:
    url = private.edge(worker_timeout=15)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, url + "/k/ghost/mark?tag=ghost")
        wait_for(lambda: llen(private, "k-ghost") == 1, what="the request in the queue")
        # A worker that took it and died before acknowledging it: it is in its processing
        # list and in the route's registry, and it is not present.
        base = f"{private.prefix}:{{rt:k-ghost}}"
        private.redis.command("LMOVE", f"{base}:q", f"{base}:p:w-dead", "LEFT", "RIGHT")
        private.redis.command("SADD", f"{base}:w", "w-dead")
        private.worker("k-ghost")
        assert pending.result(timeout=30).status_code == 200
    assert private.marker("ran-ghost").exists()


@pytest.mark.core
def test_kill_9_fails_its_connections_and_spares_the_others(private: Deployment) -> None:
    url = private.edge()
    victim = private.worker("k-victim")
    private.worker("k-other")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        http = pool.submit(get, url + "/k/victim/wait-disconnect?tag=kill")
        ws = pool.submit(asyncio.run, _ws_close_code(url + "/k/victim/ws?tag=killws"))
        wait_for(private.marker("started-kill").exists, what="the request to run")
        wait_for(private.marker("ws-open-killws").exists, what="the socket to open")
        assert get(url + "/k/other/hello").status_code == 200
        victim.signal(signal.SIGKILL)
        assert http.result(timeout=30).status_code == 502
        assert ws.result(timeout=30) == 1011
    assert get(url + "/k/other/hello").status_code == 200


async def _ws_close_code(url: str) -> int:
    async with async_timeout.timeout(30), websockets.connect(url.replace("http://", "ws://")) as ws:
        await ws.send("hello")
        assert await ws.recv() == "echo:hello"
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1
    return -2


def test_sigterm_drains_in_flight_requests_and_exits_0(private: Deployment) -> None:
    url = private.edge()
    leaving = private.worker("k-drain")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, url + "/k/drain/slow?s=1.5&tag=drain")
        wait_for(private.marker("slow-started-drain").exists, what="the slow request to run")
        leaving.signal(signal.SIGTERM)
        staying = private.worker("k-drain")  # new requests go to the new worker
        assert get(url + "/k/drain/hello").headers["x-worker-pid"] == str(staying.popen.pid)
        assert slow.result(timeout=30).status_code == 200
    assert leaving.wait() == 0


def test_rolling_restart_under_load_loses_nothing(private: Deployment) -> None:
    url = private.edge()
    workers = [private.worker("k-roll") for _ in range(3)]
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while not stop.is_set():
                statuses.append(client.get(url + "/k/roll/slow?s=0.05").status_code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for old in workers:
            private.worker("k-roll")
            seen = len(statuses)
            old.signal(signal.SIGTERM)
            assert old.wait() == 0
            wait_for(lambda seen=seen: len(statuses) > seen + 8, what="traffic to keep flowing")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert len(statuses) > 20
    assert set(statuses) == {200}


def test_worker_at_its_limit_leaves_connections_to_others(private: Deployment) -> None:
    url = private.edge()
    private.worker("k-limit", args=("--concurrency", "1"))
    private.worker("k-limit", args=("--concurrency", "1"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, url + "/k/limit/slow?s=2&tag=limit")
        marker = private.marker("slow-started-limit")
        wait_for(marker.exists, what="the slow request to run")
        busy = marker.read_text()
        pids = {get(url + "/k/limit/hello").headers["x-worker-pid"] for _ in range(5)}
        assert busy not in pids and len(pids) == 1
        assert slow.result(timeout=30).status_code == 200


def test_redis_restart(deployment: Deployment) -> None:
    url = deployment.edge(worker_timeout=2)
    deployment.worker("k-rr")
    assert get(url + "/k/rr/hello").status_code == 200
    deployment.redis.stop(kill=True)
    down = get(url + "/k/rr/hello")  # answered, not hung: the client's timeout is 30 s
    assert down.status_code == 503
    deployment.redis.start()

    def flowing() -> bool:
        try:
            return get(url + "/k/rr/hello").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(flowing, timeout=30, what="traffic to flow again after Redis came back")
    assert all(proc.alive() for proc in deployment.procs)


def test_overload_is_503_with_retry_after_and_late_requests_never_run(private: Deployment) -> None:
    # One worker serving one request at a time, more requests than it can serve before their
    # deadline: those it cannot reach in time get 503 + Retry-After (not 502 after a further
    # wait), and none of them runs.
    # The 503s come within half a second of worker_timeout.
    url = private.edge(worker_timeout=1)
    private.worker("k-over", args=("--concurrency", "1"))

    with httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_connections=16)) as client:
        def timed(i: int) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            response = client.get(url + f"/k/over/slow?s=0.3&tag=over{i}")
            return response, time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(timed, range(16)))
    responses = [response for response, _ in results]
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    late = [round(took, 2) for response, took in results if response.status_code == 503]
    print("503s after (s):", late)
    assert max(late) < 1 + 0.5, f"503s up to {max(late) - 1:.2f} s past worker_timeout"
    for i, response in enumerate(responses):
        ran = private.marker(f"slow-started-over{i}").exists()
        assert ran == (response.status_code == 200), (i, response.status_code)
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"


def test_registry_of_a_route_goes_when_its_last_worker_is_killed(private: Deployment) -> None:
    url = private.edge(worker_timeout=1)
    first = private.worker("k-reg")
    second = private.worker("k-reg")
    private.wait_registered("k-reg", second, count=2)
    assert get(url + "/k/reg/hello").status_code == 200
    registry = f"{private.prefix}:{{rt:k-reg}}:w"
    first.signal(signal.SIGKILL)
    first.wait()
    # A live worker of the route reaps the dead one, and keeps the registry.
    wait_for(lambda: private.registered("k-reg") == 1, what="the dead worker to be reaped")
    second.signal(signal.SIGKILL)
    second.wait()
    # Nobody is left to reap: the registry, and what pointed at the dead workers, expire.
    wait_for(lambda: private.redis.command("EXISTS", registry) == b":0\r\n", timeout=30,
             what="the registry to go once no live worker remains")
    assert not [k for k in private.redis_keys() if b"}:p:" in k]
