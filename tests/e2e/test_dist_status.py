"""``channels-distributed status`` of a running deployment: a real edge (uvicorn running the
distributor) and a real worker (``channels-distributed worker``) publish their cards; requests
wait on a route key nobody serves; a worker that dies leaves the status within its lease. On
one server, sharded over three, and on a Redis Cluster."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import Deployment
from helpers import wait_for
from status_schema import validate

from channels_distributed.conf import parse_hosts
from channels_distributed.figures import host_name
from channels_distributed.status import collect
from channels_distributed.transport.topology import Topology

SCRIPT = str(Path(sys.executable).with_name("channels-distributed"))


def _read(deployment: Deployment) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        topology = Topology(parse_hosts(deployment.redis.url.split()), 2.0)
        try:
            return await collect(topology, deployment.prefix)
        finally:
            await topology.close()

    return asyncio.run(read())


def _when(deployment: Deployment, test: Any, what: str) -> dict[str, Any]:
    """The status once ``test(status)`` holds (the cards are written once a second)."""
    found: dict[str, Any] = {}

    def check() -> bool:
        found.update(_read(deployment))
        return bool(test(found))

    wait_for(check, what=what)
    return found


@pytest.mark.parametrize("private", ["default", "sharded", "cluster"], indirect=True)
def test_the_status_of_a_running_deployment(private: Deployment) -> None:
    url = private.edge(worker_timeout=20)
    edge = private.procs[-1]
    worker = private.worker("t", args=("--concurrency", "3"))
    assert httpx.get(f"{url}/t/hello", timeout=10).status_code == 200
    pool = ThreadPoolExecutor(4)
    try:
        for _ in range(3):  # a route key nobody serves: they wait in its queue
            pool.submit(httpx.get, f"{url}/k/nobody/hello", timeout=30)
        pool.submit(httpx.get, f"{url}/t/slow?s=30&tag=held", timeout=40)
        wait_for(lambda: private.marker("slow-started-held").exists(), what="the slow request")
        status = _when(private, lambda s: s["routes"].get("k-nobody", {}).get("queued") == 3
                       and s["routes"].get("t", {}).get("in_flight") == 1
                       and s["edges"] and s["edges"][0]["open"] == 4, "the figures")
        validate(status)
        waiting, served = status["routes"]["k-nobody"], status["routes"]["t"]
        assert waiting["oldest_s"] > 0 and waiting["workers"] == []
        assert (waiting["concurrency"], waiting["saturation"], waiting["requests"]) == (0, 3, 3)
        [entry] = served["workers"]
        assert (entry["host"], entry["pid"], entry["concurrency"], entry["in_flight"],
                entry["served"], entry["state"]) == (host_name(), worker.popen.pid, 3, 1, 1,
                                                     "serving")
        assert (served["concurrency"], served["saturation"], served["taken"]) == (3, 0.333, 0)
        assert (served["requests"], served["served"]) == (2, 1)
        [shown] = status["edges"]
        assert (shown["host"], shown["pid"], shown["state"]) == (host_name(), edge.popen.pid,
                                                                 "serving")
        _the_command_shows_it(private, worker.popen.pid)
        worker.popen.kill()  # its card expires with its lease; the edge loses its request
        status = _when(private, lambda s: s["routes"]["t"]["workers"] == []
                       and s["routes"]["t"]["failures"], "the worker gone")
        assert status["routes"]["t"]["failures"] == {"worker_lost": 1}
        assert status["edges"][0]["failures"] == {"worker_lost": 1}
    finally:
        # Killed: a stop would wait for the clients still waiting on the key nobody serves.
        edge.popen.kill()
        edge.wait()
        pool.shutdown()


def _the_command_shows_it(deployment: Deployment, worker_pid: int) -> None:
    urls = [part for url in deployment.redis.url.split() for part in ("--url", url)]
    command = [SCRIPT, "status", *urls, "--prefix", deployment.prefix]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["routes"]["k-nobody"]["queued"] == 3
    table = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    workers = lines[lines.index("WORKERS") + 1:]
    assert workers[1].split()[:4] == [host_name(), str(worker_pid), "t", "1/3"]
    assert [line.split()[:2] for line in lines if line.startswith("k-nobody ")] == [
        ["k-nobody", "3"]]
