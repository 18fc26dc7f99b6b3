"""At its deadline the distributor withdraws a request, or stops it from being acknowledged.

The test plays a stalled worker with the worker's own queue code: it takes the request from the
queue like a worker does, then acknowledges it too late (and says so, as a worker does, or not),
or in time but never answers. No request the client was told about is run afterwards, and
nothing is left per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx
from deployment import Deployment
from helpers import wait_for_async

from channels_distributed.conf import parse_hosts
from channels_distributed.forwarding.hub import Hub
from channels_distributed.protocol.envelope import decode_connect
from channels_distributed.protocol.forwarding import WORKER
from channels_distributed.protocol.keys import DistKeys
from channels_distributed.transport.queues import RouteQueue
from channels_distributed.transport.scripts import GIVEN_UP, OURS
from channels_distributed.transport.topology import Topology
from channels_distributed.worker.connection import tell_expired


async def _take(route: RouteQueue) -> bytes:
    link = await route.shard.link()
    entry = await wait_for_async(
        lambda: link.call("LMOVE", route.queue, route.processing, "LEFT", "RIGHT"),
        what="the request to reach the queue")
    return bytes(entry)  # type: ignore[arg-type]


async def _stalled_worker(deployment: Deployment, url: str, ack_in_time: bool,
                          tell: bool = False) -> tuple[httpx.Response, int, bool]:
    """Take the request, acknowledge it in time or once the distributor gave it up, and, with
    ``tell``, say so as a worker does. The response, the acknowledgement's answer, and whether
    the given-up mark is still in Redis."""
    topology = Topology(parse_hosts([deployment.redis.url]), 1.0)
    keys = DistKeys(deployment.prefix)
    route = RouteQueue(keys, topology.shards[0], "k-stall", "stalled")
    link = await route.shard.link()
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response = loop.run_in_executor(
            pool, lambda: httpx.get(url + "/k/stall/mark?tag=stall", timeout=30))
        entry = await _take(route)
        connect = decode_connect(entry)
        state = keys.state("k-stall", connect.conn)
        if ack_in_time:
            answer = await route.ack(entry, connect.conn)
        else:
            await wait_for_async(lambda: link.call("EXISTS", state),
                                 what="the distributor to give up")
            answer = await route.ack(entry, connect.conn)
        if tell:
            hub = Hub(parse_hosts([deployment.redis.url]), deployment.prefix, side=WORKER,
                      retry_window=1.0)
            tell_expired(hub, connect)
            await hub.state.writer_for(connect.reply).wait_idle()
            await hub.close()
        got = await response
        marked = bool(await link.call("EXISTS", state))
    await topology.close()
    return got, answer, marked



def test_a_request_taken_but_not_acknowledged_by_its_deadline_never_runs(
        private: Deployment) -> None:
    url = private.edge(worker_timeout=0.5)
    response, answer, marked = asyncio.run(_stalled_worker(private, url, ack_in_time=False))
    assert response.status_code == 502  # a worker had it and said nothing: not "no worker"
    assert answer == GIVEN_UP  # the late acknowledgement fails: the worker must not run it
    assert not marked  # gone from every list: its given-up mark goes with it
    assert not private.marker("ran-stall").exists()


def test_a_worker_that_took_a_request_too_late_says_so_and_the_client_gets_503(
        private: Deployment) -> None:
    url = private.edge(worker_timeout=0.5)
    response, answer, _ = asyncio.run(_stalled_worker(private, url, ack_in_time=False, tell=True))
    assert answer == GIVEN_UP
    # The worker's cd.expired: the request never ran, so "retry later", not "the worker failed".
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert not private.marker("ran-stall").exists()


def test_a_request_acknowledged_in_time_is_left_to_its_worker(private: Deployment) -> None:
    url = private.edge(worker_timeout=0.5)
    response, answer, _ = asyncio.run(_stalled_worker(private, url, ack_in_time=True))
    assert answer == OURS
    # Acknowledged before the deadline, then silent (no accept ever sent): the client is told
    # the worker failed it (502), never 503, which would invite a retry of a request that ran.
    assert response.status_code == 502
