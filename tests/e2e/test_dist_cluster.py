"""Redis Cluster end to end: a primary killed under traffic (its replica is promoted, and
everything carries on), and the documented ACL on a cluster.

Six nodes (three primaries, a replica each, ``cluster-node-timeout`` 1 s). The primary serving
the route key's queue is killed with SIGKILL while an edge, a worker and a channel layer use the
cluster: every request made during the switch is answered (200, or 503 while no worker could be
reached), none hangs; requests are served again once the replica is promoted, by the same edge
and worker processes; and a layer's receive() that was waiting on a channel of that primary
gets the next message sent there. How long the switch took is printed, not asserted (timings
belong to bench/); by hand, on 2 loaded cores, it was about 3 s from the kill.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import hiredis
import httpx
import pytest
from deployment import Deployment
from helpers import wait_for_async
from servers import primary_of

from channels_distributed import RedisChannelLayer
from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import RedisCluster, RedisServer
from channels_distributed.exceptions import RedisUnavailable
from channels_distributed.forwarding.hub import Hub
from channels_distributed.protocol.forwarding import WORKER
from channels_distributed.protocol.keys import key_slot
from channels_distributed.transport.eviction import warn_if_evicting
from channels_distributed.transport.queues import RouteQueue
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL

# Bounds, never expectations: the edge answers 503 after worker_timeout (5 s), and a failover
# takes the node timeout (1 s) plus an election (~1 s).
REQUEST_TIMEOUT = 15.0
RESUME_WAIT = 30.0


def _channel_on(cluster: RedisCluster, index: int, prefix: str) -> str:
    return next(f"c{i}" for i in range(10_000)
                if primary_of(f"{prefix}:{{c:c{i}}}", len(cluster.primaries)) == index)


async def _get(client: httpx.AsyncClient, url: str) -> int:
    response = await asyncio.wait_for(client.get(url), REQUEST_TIMEOUT)  # a hang fails here
    assert response.status_code in (200, 503), response.text
    return response.status_code


# The primary of the route key's queue (the request path), and the one serving slot 0, where
# every process keeps its presence subscription (a dead presence server fails the connections
# being watched, as a dead single server does).
@pytest.mark.parametrize("killed", ["route", "presence"])
async def test_a_killed_primary_is_replaced_without_restarting_anything(
        failover_cluster: RedisCluster, tmp_path: Path, killed: str) -> None:
    cluster = failover_cluster
    deployment = Deployment(cluster, tmp_path)
    try:
        url = deployment.edge()
        worker = deployment.worker("t")
        deployment.wait_registered("t", worker)
        route_queue = f"{deployment.prefix}:{{rt:t}}:q"
        victim = primary_of(route_queue, len(cluster.primaries)) if killed == "route" else 0
        layer = RedisChannelLayer(hosts=[cluster.url], prefix=deployment.prefix)
        channel = _channel_on(cluster, victim, deployment.prefix)
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            assert await _get(client, url + "/t/hello") == 200
            waiting = asyncio.ensure_future(layer.receive(channel))
            await asyncio.sleep(0.2)  # the receive() is parked in its blocking pop
            killed = time.monotonic()
            cluster.primaries[victim].stop(kill=True)
            during = await asyncio.gather(*(_get(client, url + "/t/hello") for _ in range(8)))
            await wait_for_async(lambda: _served(client, url), RESUME_WAIT,
                                 "requests served again")
            resumed = time.monotonic() - killed
            await wait_for_async(lambda: _sent(layer, channel), RESUME_WAIT, "a send")
            message = await asyncio.wait_for(waiting, RESUME_WAIT)
        assert message == {"type": "after.failover"}
        assert worker.alive()
        print(f"during the switch: {during}; served again {resumed:.1f} s after the kill")
        await layer.close()
    finally:
        deployment.close()


async def _served(client: httpx.AsyncClient, url: str) -> bool:
    return await _get(client, url + "/t/hello") == 200


async def _sent(layer: RedisChannelLayer, channel: str) -> bool:
    try:
        await layer.send(channel, {"type": "after.failover"})
    except RedisUnavailable:
        return False  # the slot's new primary is not known yet: tried again
    return True


async def test_the_documented_acl_is_enough_on_a_cluster(
        redis_cluster: Any, tmp_path: Path) -> None:
    """The README's ACL (the layer's and the workers' rules) on every node: the cluster is
    found, and the layer, an edge and a worker do all they do through it, on a spread route
    too."""
    cluster: RedisCluster = redis_cluster.cluster
    deployment = Deployment(_LoggedIn(cluster), tmp_path)  # type: ignore[arg-type]
    rules = f"{LAYER_ACL} {WORKER_ACL}".replace("~asgi:*", f"~{deployment.prefix}:*").replace(
        "&asgi:", f"&{deployment.prefix}:")
    for node in cluster.nodes:
        assert node.command("ACL", "SETUSER", "app", "reset", "on", ">pw",
                            *rules.split()) == b"+OK\r\n"
    url = deployment.redis.url
    try:
        layer = RedisChannelLayer(hosts=[url], prefix=deployment.prefix)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "to.group"})
        await layer.send("plain", {"type": "plain"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "to.group"
        assert (await asyncio.wait_for(layer.receive("plain"), 5))["type"] == "plain"
        await layer.flush()
        await layer.close()
        edge = deployment.edge(worker_timeout=2.0, CD_SPREAD="t=3")  # a spread route too
        worker = deployment.worker("t")
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            assert await _get(client, edge + "/t/hello") == 200
            # Past the edge's warm-up: its pushes ring the doorbell the worker listens to,
            # and the worker reads the spread the edge announces (MGET).
            await wait_for_async(lambda: "sub-queue" in worker.output(), 10.0, "the spread")
            await asyncio.sleep(2.0)
            for _ in range(3):
                assert await _get(client, edge + "/t/hello") == 200
            # Why it was not served is read from the route's registry (SCARD): allowed too.
            assert await _get(client, edge + "/k/nobody/x") == 503
        assert "no_worker on route key k-nobody" in deployment.procs[0].output()
        # The edge reads the route overrides (GET, twice a second): never refused.
        assert "route overrides" not in deployment.procs[0].output()
        assert "refused" not in deployment.procs[0].output() + worker.output()
        # What a worker does only now and then: read the eviction policy (INFO), look at its
        # processing list after a dropped take (LRANGE).
        hub = Hub(parse_hosts([url]), deployment.prefix, side=WORKER, retry_window=2.0)
        assert len(await warn_if_evicting(hub.topology)) == len(cluster.primaries)
        route = RouteQueue(hub.keys, hub.shard_for(hub.keys.queue("t")), "t", hub.id)
        assert await route.taken() == []
        await hub.close()
    finally:
        deployment.close()
        for node in cluster.nodes:
            node.command("ACL", "DELUSER", "app")


class _LoggedIn:
    """The cluster as a Deployment sees it, with a URL logging in as the ACL user 'app'."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.url = cluster.url.replace("redis://", "redis://app:pw@")

    def command(self, *args: str | int | bytes) -> bytes:
        return self.cluster.command(*args)

    def keys(self, pattern: str = "*") -> list[bytes]:
        return self.cluster.keys(pattern)


async def test_a_route_queue_follows_its_slot(tmp_path: Path) -> None:
    """The slot of the route key's queue moves to another primary under an edge and a worker:
    the edge's pushes and the worker's takes follow it, and requests are served again."""
    with RedisCluster(2) as cluster:
        deployment = Deployment(cluster, tmp_path)
        try:
            url = deployment.edge()
            deployment.worker("t")
            slot = key_slot(f"{deployment.prefix}:{{rt:t}}:q")
            source = cluster.primaries[primary_of("{rt:t}", len(cluster.primaries))]
            target = cluster.primaries[0]
            assert source is not target  # the second primary serves slot 16280
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
                assert await _get(client, url + "/t/hello") == 200
                _move(slot, source, target)
                await wait_for_async(lambda: _served(client, url), RESUME_WAIT,
                                     "requests served again")
                assert [await _get(client, url + "/t/hello") for _ in range(5)] == [200] * 5
            assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) != b":0\r\n"
        finally:
            deployment.close()


def _move(slot: int, source: RedisServer, target: RedisServer) -> None:
    """Migrate ``slot`` with its keys, as redis-cli --cluster reshard does."""
    source_id, target_id = (n.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()
                            for n in (source, target))
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    reader = hiredis.Reader()
    reader.feed(source.command("CLUSTER", "GETKEYSINSLOT", slot, 1000))
    keys = reader.gets() or []
    if keys:
        source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
    for node in (target, source):
        node.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
