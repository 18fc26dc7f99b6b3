"""At its deadline the distributor withdraws a request, or stops it from being acknowledged.

The test plays a stalled worker with the worker's own queue code: it takes the request from the
queue like a worker does, then acknowledges it too late, or in time but never answers. No
request the client was told about is run afterwards, and nothing is written per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import httpx
from dist_helpers import Cluster

from channels_distributed.conf import parse_hosts
from channels_distributed.protocol.envelope import DistKeys, decode_connect
from channels_distributed.transport.connection import Topology
from channels_distributed.transport.queues import RouteQueue


async def _take(route: RouteQueue, timeout: float = 10.0) -> bytes:
    link = await route.shard.link()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = await link.call("LMOVE", route.queue, route.processing, "LEFT", "RIGHT")
        if entry is not None:
            return bytes(entry)
        await asyncio.sleep(0.01)
    raise TimeoutError("the request never reached the queue")


async def _stalled_worker(cluster: Cluster, url: str, ack_in_time: bool) -> tuple[int, bool]:
    topology = Topology(parse_hosts([cluster.redis.url]), 1.0)
    route = RouteQueue(DistKeys(cluster.prefix), topology.shards[0], "k-stall", "stalled")
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response = loop.run_in_executor(
            pool, lambda: httpx.get(url + "/k/stall/mark?tag=stall", timeout=30))
        entry = await _take(route)
        conn = decode_connect(entry).conn
        if ack_in_time:
            mine = await route.ack(entry, conn)
            status = (await response).status_code
        else:
            status = (await response).status_code  # the distributor gives up first
            mine = await route.ack(entry, conn)
    await topology.close()
    return status, mine


def test_a_request_taken_but_not_acknowledged_by_its_deadline_never_runs(
        private: Cluster) -> None:
    url = private.edge(worker_timeout=0.5)
    status, mine = asyncio.run(_stalled_worker(private, url, ack_in_time=False))
    assert status == 502  # a worker had it: not "no worker available"
    assert mine is False  # the late acknowledgement fails: the worker must not run it


def test_a_request_acknowledged_in_time_is_left_to_its_worker(private: Cluster) -> None:
    url = private.edge(worker_timeout=0.5)
    status, mine = asyncio.run(_stalled_worker(private, url, ack_in_time=True))
    assert mine is True
    # Acknowledged before the deadline, then silent (no accept ever sent): the client is told
    # the worker failed it (502), never 503, which would invite a retry of a request that ran.
    assert status == 502
