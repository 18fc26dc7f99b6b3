"""A hot route spread over several sub-queues, with real processes: the sub-queues land on
different primaries of a 3-primary cluster, one worker empties them all, requests through an
edge on a spread route are all served once, and a worker killed while holding a sub-queue's
requests has them re-served by another."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from deployment import Deployment
from helpers import wait_for
from servers import primary_of

from channels_distributed.protocol.keys import DistKeys
from channels_distributed.protocol.spread import sub_queues


def test_three_sub_queues_land_on_three_primaries(redis_cluster: Any) -> None:
    cluster = redis_cluster.cluster
    names = sub_queues("api", 3)
    queues = [DistKeys("asgi").queue(name) for name in names]
    slots = [int(cluster.primaries[0].command("CLUSTER", "KEYSLOT", q).split(b"\r\n")[0][1:])
             for q in queues]
    assert len(set(slots)) == 3
    assert sorted(primary_of(q, len(cluster.primaries)) for q in queues) == [0, 1, 2]


async def test_an_edge_spreads_a_route_and_one_worker_serves_every_sub_queue(
        redis_cluster: Any, tmp_path: Path) -> None:
    deployment = Deployment(redis_cluster.cluster, tmp_path)
    try:
        url = deployment.edge(CD_SPREAD="t=3")
        worker = deployment.worker("t")
        deployment.wait_registered("t", worker)
        keys = DistKeys(deployment.prefix)
        # The worker follows the edge's announcement: registered on every sub-queue.
        wait_for(lambda: all(deployment.integer("SCARD", keys.registry(name)) == 1
                             for name in sub_queues("t", 3)), what="registered on 3 sub-queues")
        async with httpx.AsyncClient(timeout=15.0) as client:
            await asyncio.sleep(2.0)  # past the edge's warm-up: every sub-queue in use
            for _ in range(3):  # one at a time: c=1, each woken by the doorbell
                assert (await client.get(url + "/t/hello")).status_code == 200
            answers = await asyncio.gather(*(client.get(f"{url}/t/mark?tag=r{i}")
                                             for i in range(30)))
        assert [a.status_code for a in answers] == [200] * 30
        # Each ran exactly once.
        assert [len(deployment.recorded(f"ran-r{i}")) for i in range(30)] == [1] * 30
        assert worker.alive()
    finally:
        deployment.close()


def test_one_worker_empties_every_pre_filled_sub_queue(redis_single: Any,
                                                       tmp_path: Path) -> None:
    deployment = Deployment(redis_single.servers[0], tmp_path)
    try:
        url = deployment.edge(CD_SPREAD="t=3", worker_timeout=20.0)
        keys = DistKeys(deployment.prefix)
        wait_for(lambda: deployment.integer("EXISTS", keys.spread("t", 3)) == 1,
                 what="the edge's announcement")
        results: list[int] = []

        def call(i: int) -> None:
            results.append(httpx.get(f"{url}/t/hello", timeout=30.0).status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        time.sleep(2.0)  # past the edge's warm-up
        for thread in threads:
            thread.start()
        wait_for(lambda: all(deployment.integer("LLEN", keys.queue(name)) > 0
                             for name in sub_queues("t", 3)), what="every sub-queue filled")
        worker = deployment.worker("t")
        for thread in threads:
            thread.join(30.0)
        assert results == [200] * 12
        assert all(deployment.integer("LLEN", keys.queue(name)) == 0
                   for name in sub_queues("t", 3))
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    finally:
        deployment.close()
