"""Prometheus metrics of real processes: an edge under a gunicorn master with two worker
processes (PROMETHEUS_MULTIPROC_DIR, the package's gunicorn hooks) whose page sums both,
whatever process answers it; workers' --metrics-bind pages; an edge under uvicorn (one process,
no directory) with WebSockets; and the refusals at start-up."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from deployment import Deployment, Proc
from gunicorn_helpers import Gunicorn
from helpers import wait_for
from prometheus_client.multiprocess import MultiProcessCollector
from scrape import Samples, names, scrape, value

from channels_distributed.embedded import free_port
from channels_distributed.figures import CAUSES

PATH = "/-/metrics"
EDGE = "channels_distributed_edge_"
WORKER = "channels_distributed_worker_"


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)  # a new connection each: gunicorn's processes share them


def metered_worker(deployment: Deployment, key: str) -> tuple[Proc, str]:
    port = free_port()
    proc = deployment.worker(key, args=("--metrics-bind", f"127.0.0.1:{port}"))
    return proc, f"http://127.0.0.1:{port}/metrics"


def requests_by_pid(folder: Path) -> dict[int, float]:
    """Requests each edge process counted, from its own file of the directory."""
    counted = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        counted[pid] = sum(s.value for metric in MultiProcessCollector.merge([str(path)])
                           for s in metric.samples if s.name == f"{EDGE}requests_total")
    return counted


def stale_run(folder: Path) -> None:
    """What a previous run of the server left in the directory: 1000 requests of k-ok."""
    code = ("from channels_distributed import metrics; metrics.switch_on('test'); "
            "from channels_distributed.metrics.families import EDGE_REQUESTS; "
            "EDGE_REQUESTS.labels('k-ok', 'http', '200').inc(1000)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert list(folder.glob("counter_*.db"))


def check_totals(page: Samples, ok: int) -> None:
    """The figures of the requests of the test, as any process of the edge reports them (once
    every process flushed what it counted: at most a second later)."""
    def requests(route: str, status: str) -> float:
        return value(page, f"{EDGE}requests_total", route=route, kind="http", status=status)

    assert requests("k-ok", "200") == ok  # not 1000 more: on_starting emptied the directory
    assert requests("k-ok", "500") == 1
    assert requests("k-none", "503") == 1
    assert requests("k-victim", "502") == 1
    failures = {(route, cause): value(page, f"{EDGE}failures_total", route=route, cause=cause)
                for route in ("k-ok", "k-none", "k-victim") for cause in CAUSES}
    assert {k: v for k, v in failures.items() if v} == {("k-none", "no_worker"): 1,
                                                       ("k-victim", "worker_lost"): 1}
    # Accepted by a worker: the 200s, the 500 and the request of the victim.
    assert value(page, f"{EDGE}queue_wait_seconds_count", route="k-ok") == ok + 1
    assert value(page, f"{EDGE}queue_wait_seconds_count", route="k-victim") == 1
    assert value(page, f"{EDGE}queue_wait_seconds_count", route="k-none") == 0
    assert value(page, f"{EDGE}request_duration_seconds_count", route="k-ok",
                 kind="http") == ok + 1
    # The 503 waited worker_timeout (1 s) for a worker.
    assert value(page, f"{EDGE}request_duration_seconds_bucket", route="k-none", kind="http",
                 le="0.5") == 0
    assert value(page, f"{EDGE}open_connections") == 0


def totals(url: str, ok: int) -> bool:
    try:
        check_totals(scrape(url), ok)
    except AssertionError:
        return False
    return True


def test_gunicorn_edge_sums_its_processes(private: Deployment, gunicorn: Callable[..., Gunicorn],
                                          tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale_run(folder)
    _, ok_page = metered_worker(private, "k-ok")
    victim, _ = metered_worker(private, "k-victim")
    env = {"CD_REDIS_URL": private.redis.url, "CD_PREFIX": private.prefix,
           "CD_WORKER_TIMEOUT": "1", "CD_METRICS_PATH": PATH, "CD_MARKER_DIR": str(private.markers),
           "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    server = gunicorn("testproject.edge:app", "--workers", "2", "--config",
                      "python:channels_distributed.metrics.hooks", env=env)
    server.wait_ready(2)
    ok = 0
    # Requests until both processes have served some (the kernel picks who accepts each).
    while ok < 200 and len([n for n in requests_by_pid(folder).values() if n]) < 2:
        for _ in range(10):
            assert get(server.url + "/k/ok/hello").status_code == 200
        ok += 10
    assert len([n for n in requests_by_pid(folder).values() if n]) == 2, requests_by_pid(folder)
    assert get(server.url + "/k/ok/boom-before").status_code == 500
    assert get(server.url + "/k/none/hello").status_code == 503
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        lost = pool.submit(get, server.url + "/k/victim/wait-disconnect?tag=kill")
        wait_for(private.marker("started-kill").exists, what="the request to run")
        wait_for(lambda: value(scrape(server.url + PATH), f"{EDGE}open_connections") == 1,
                 what="the open connection to be counted")
        for _ in range(4):  # open in one process, counted whichever process answers
            assert value(scrape(server.url + PATH), f"{EDGE}open_connections") == 1
        victim.signal(signal.SIGKILL)
        assert lost.result(timeout=30).status_code == 502
    wait_for(lambda: totals(server.url + PATH, ok), what="both processes' figures")
    for _ in range(6):  # whichever process answers, the sum over both
        check_totals(scrape(server.url + PATH), ok)

    worker = scrape(ok_page)
    assert value(worker, f"{WORKER}served_total", route="k-ok") == ok + 1
    assert value(worker, f"{WORKER}errors_total", route="k-ok") == 1
    assert value(worker, f"{WORKER}in_flight", route="k-ok") == 0
    assert value(worker, f"{WORKER}take_latency_seconds_count", route="k-ok") == ok + 1
    assert value(worker, f"{WORKER}concurrency") == 100

    # A process killed: what it counted stays counted, its open connections go (child_exit).
    dead = max(requests_by_pid(folder).items(), key=lambda item: item[1])[0]
    assert (folder / f"gauge_livesum_{dead}.db").exists()
    os.kill(dead, signal.SIGKILL)
    wait_for(lambda: not (folder / f"gauge_livesum_{dead}.db").exists(),
             what="child_exit to forget the dead process's gauge")
    server.wait_ready(3)
    for _ in range(4):
        check_totals(scrape(server.url + PATH), ok)


def test_gunicorn_refuses_to_sum_nothing(private: Deployment,
                                         gunicorn: Callable[..., Gunicorn]) -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ, "the suite runs without it"
    env = {"CD_REDIS_URL": private.redis.url, "CD_PREFIX": private.prefix,
           "CD_METRICS_PATH": PATH, "CD_WORKER_TIMEOUT": "0.5"}
    server = gunicorn("testproject.edge:app", "--workers", "2", env=env, ready=False)
    assert server.wait(30) != 0  # the worker processes fail to boot: the master halts
    log = server.log()
    assert "metrics_path: the edge serves metrics from 2 gunicorn worker processes" in log
    assert "set PROMETHEUS_MULTIPROC_DIR to an empty directory" in log
    # One process needs no directory: its page is its own figures.
    single = gunicorn("testproject.edge:app", env=env)
    assert f"{EDGE}requests_total" not in names(scrape(single.url + PATH))  # none yet
    assert get(single.url + "/k/nobody/hello").status_code == 503
    assert value(scrape(single.url + PATH), f"{EDGE}requests_total", route="k-nobody",
                 kind="http", status="503") == 1


def test_gunicorn_warns_without_its_child_exit_hook(private: Deployment,
                                                    gunicorn: Callable[..., Gunicorn],
                                                    tmp_path: Path) -> None:
    server = gunicorn("testproject.edge:app", "--workers", "2", env={
        "CD_REDIS_URL": private.redis.url, "CD_PREFIX": private.prefix, "CD_METRICS_PATH": PATH,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    server.wait_ready(2)
    assert server.log().count("metrics: PROMETHEUS_MULTIPROC_DIR is set but no child_exit "
                              "hook") == 2  # one line per worker process
    assert value(scrape(server.url + PATH), f"{EDGE}open_connections") == 0


async def _websockets(url: str) -> int:
    """A WebSocket a worker serves, then one no worker takes: its close code."""
    import websockets
    from websockets.exceptions import ConnectionClosed

    async with websockets.connect(url + "/ws/echo") as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo:hi"
    async with websockets.connect(url + "/k/nows/ws") as refused:
        with pytest.raises(ConnectionClosed) as closed:
            await refused.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_uvicorn_edge_counts_websockets_and_its_own_paths_are_not_routed(
        private: Deployment) -> None:
    import asyncio

    private.worker("t")
    port = free_port()
    proc = private.spawn([sys.executable, "-m", "uvicorn", "testproject.edge:app", "--port",
                          str(port), "--log-level", "warning"], "edge", CD_METRICS_PATH=PATH,
                         CD_WORKER_TIMEOUT="0.5")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: proc.alive() and _answers(url + PATH), what="the edge's metrics")
    assert asyncio.run(_websockets(url.replace("http://", "ws://"))) == 1013
    page = scrape(url + PATH)
    assert value(page, f"{EDGE}requests_total", route="t", kind="websocket", status="101") == 1
    # Refused by the edge (no worker): closed with 1013, counted with its cause's status.
    assert value(page, f"{EDGE}requests_total", route="k-nows", kind="websocket",
                 status="503") == 1
    assert value(page, f"{EDGE}failures_total", route="k-nows", cause="no_worker") == 1
    assert value(page, f"{EDGE}request_duration_seconds_count", route="t",
                 kind="websocket") == 1
    # The metrics path is answered by the edge: never routed, never counted.
    assert not [labels for name, labels in page if name == f"{EDGE}requests_total"
                and ("kind", "http") in labels]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_worker_refuses_a_multiprocess_directory(private: Deployment, tmp_path: Path) -> None:
    port = free_port()
    urls = [part for url in private.redis.url.split() for part in ("--url", url)]
    done = subprocess.run(
        [sys.executable, "-m", "channels_distributed.cli", "worker", "k-x", "--app",
         "testproject.workers:app", *urls, "--metrics-bind", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, env=private.env(
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path)))
    assert done.returncode == 2
    assert ("PROMETHEUS_MULTIPROC_DIR: is set for a process serving --metrics-bind"
            in done.stderr)
    assert "unset PROMETHEUS_MULTIPROC_DIR for workers" in done.stderr
