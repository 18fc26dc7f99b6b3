"""A Sentinel-managed master: the layer finds it through the sentinels."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from helpers import wait_for
from sentinels import Sentinel

from channels_distributed import RedisChannelLayer
from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import RedisServer
from channels_distributed.forwarding.hub import Hub
from channels_distributed.forwarding.peer import open_peer
from channels_distributed.protocol.forwarding import WORKER

WAIT = 5.0


@pytest.fixture
def sentinel(redis_fresh: RedisServer) -> Iterator[Sentinel]:
    watcher = Sentinel(redis_fresh)
    yield watcher
    watcher.stop()


async def test_layer_through_sentinel(sentinel: Sentinel, redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", sentinel.port)],
                                      "master_name": "mymaster"}])
    channel = await layer.new_channel()
    await layer.group_add("watched", channel)
    await layer.group_send("watched", {"type": "via.sentinel"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "via.sentinel"
    assert redis_fresh.command("EXISTS", "asgi:{g:watched}") == b":1\r\n"
    await layer.flush()
    await layer.close()


async def test_sentinels_that_require_a_password(redis_fresh: RedisServer) -> None:
    watcher = Sentinel(redis_fresh, password="s3cret")
    try:
        layer = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", watcher.port)],
                                          "master_name": "mymaster",
                                          "sentinel_kwargs": {"password": "s3cret"}}])
        await layer.send("through", {"type": "x"})
        assert (await asyncio.wait_for(layer.receive("through"), WAIT))["type"] == "x"
        await layer.close()
        refused = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", watcher.port)],
                                            "master_name": "mymaster"}], retry_window=0.3)
        with pytest.raises(ConnectionError, match=r"no master 'mymaster' found.*NOAUTH"):
            await refused.send("through", {"type": "x"})
        await refused.close()
    finally:
        watcher.stop()


async def test_unknown_master_name_is_a_clear_error(sentinel: Sentinel) -> None:
    layer = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", sentinel.port)],
                                      "master_name": "nosuch"}], retry_window=0.3)
    with pytest.raises(ConnectionError, match="no master 'nosuch'"):
        await layer.send("x", {"type": "x"})
    await layer.close()


@pytest.fixture
def replicated(redis_fresh: RedisServer) -> Iterator[tuple[RedisServer, RedisServer, Sentinel]]:
    """A master, its replica in sync, and a sentinel that knows both."""
    replica = RedisServer(binary=redis_fresh.binary, extra_args=[
        "--replicaof", "127.0.0.1", str(redis_fresh.port)]).start()
    watcher = Sentinel(redis_fresh)
    try:
        wait_for(lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
                 what="the replica to sync")
        wait_for(lambda: str(replica.port).encode() in watcher.command(
            "SENTINEL", "replicas", "mymaster"), what="sentinel to see it")
        yield redis_fresh, replica, watcher
    finally:
        watcher.stop()
        replica.cleanup()


async def _lands_on(server: RedisServer, send, key: str, within: float) -> float:
    """Send (retrying what fails during the switch) until a message lands in ``key`` on
    ``server``; how long that took. Fails after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while server.command("LLEN", key) in (b":0\r\n",):
        assert loop.time() - started < within, f"traffic still not on port {server.port}"
        # (a push in flight when the old master's connections dropped fails: send again)
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            await asyncio.wait_for(send(), 1.0)
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_a_graceful_failover_moves_the_layer_and_the_distributor_within_2_s(
        replicated) -> None:
    """SENTINEL FAILOVER keeps the old master up (it stays a writable master for ~10 s, until
    Sentinel reconfigures it). Asking the sentinels only on reconnect kept all traffic there
    meanwhile, lost once the old master turned replica; the layer and the distributor (they
    share transport/connection.py) now follow the +switch-master announcement."""
    old, new, watcher = replicated
    hosts = [{"sentinels": [("127.0.0.1", watcher.port)], "master_name": "mymaster"}]
    layer = RedisChannelLayer(hosts=hosts)
    hub = Hub(parse_hosts(hosts), "dist", side=WORKER, retry_window=2.0)
    hub.start()
    peer = open_peer(hub, "conn-1", 16, remote=hub.inbox)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "before"})
    assert (await asyncio.wait_for(layer.receive(channel), WAIT))["type"] == "before"
    waiting = asyncio.ensure_future(layer.receive(channel))  # parked in a pop on the old master
    await hub.send_events(hub.inbox, "conn-1", [{"type": "before"}])
    assert (await asyncio.wait_for(peer.receive(), WAIT))["type"] == "before"

    # NOGOODSLAVE until the sentinel has the replica's INFO: ask until it starts.
    await asyncio.get_running_loop().run_in_executor(None, lambda: wait_for(
        lambda: watcher.command("SENTINEL", "FAILOVER", "mymaster") == b"+OK\r\n",
        what="the failover to start"))
    await asyncio.get_running_loop().run_in_executor(None, lambda: wait_for(
        lambda: watcher.master_port() == new.port, timeout=30, what="the switch"))
    # From the switch on: the layer's sends, its waiting receive and the hub, on the new master.
    await _lands_on(new, lambda: layer.send("probe", {"type": "probe"}), "asgi:{c:probe}", 2.0)
    await layer.send(channel, {"type": "after"})
    assert (await asyncio.wait_for(waiting, 2.0))["type"] == "after"
    await _lands_on(new, lambda: hub.push(hub.keys.queue("r"), b"x", 10, 10_000),
                    "dist:{rt:r}:q", 2.0)
    await hub.send_events(hub.inbox, "conn-1", [{"type": "after"}])
    assert (await asyncio.wait_for(peer.receive(), 2.0))["type"] == "after"
    assert old.command("ROLE").startswith(b"*3\r\n$6\r\nmaster")  # still up, still master
    await hub.close()
    await layer.flush()
    await layer.close()
