"""What a healthy Redis answers "not now" is waited out within ``retry_window``, not raised.

A script that runs longer than ``lua-time-limit`` makes Redis answer every other command with
``BUSY`` until it ends: the same kind of answer as ``CLUSTERDOWN`` during a cluster failover
(``test_layer_cluster_failover.py``), ``LOADING`` or ``TRYAGAIN``, on one server and on cue.
Before, a send answered so raised RedisUnavailable at once.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import wait_for_async

from channels_distributed import RedisChannelLayer
from channels_distributed.conf.hosts import parse_hosts
from channels_distributed.embedded import RedisServer
from channels_distributed.exceptions import RedisUnavailable
from channels_distributed.transport.loopstate import LoopState

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)

WAIT = 10.0
# Keeps Redis busy for ARGV[1] microseconds.
BUSY_SCRIPT = """
local function now() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end
local stop = now() + tonumber(ARGV[1])
while now() < stop do end
return 1
"""


async def _busy_for(server: RedisServer, seconds: float) -> None:
    """Start a script that keeps ``server`` busy for ``seconds``; returns once other clients
    are answered BUSY."""
    assert server.command("CONFIG", "SET", "lua-time-limit", "20") == b"+OK\r\n"
    # (RedisServer.command gives up reading after 0.5 s; the script runs on regardless.)
    asyncio.get_running_loop().run_in_executor(
        None, server.command, "EVAL", BUSY_SCRIPT, 0, int(seconds * 1_000_000))
    await wait_for_async(lambda: server.command("PING").startswith(b"-BUSY"), WAIT,
                         "Redis to answer BUSY")


async def _not_busy(server: RedisServer) -> None:
    await wait_for_async(lambda: server.command("PING") == b"+PONG\r\n", WAIT,
                         "the script to end")


async def test_sends_group_calls_and_receives_wait_while_redis_is_busy(
        redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], retry_window=WAIT)
    member = await layer.new_channel()
    await layer.send("warm", {"type": "x"})  # connected: the next answers come from the script
    assert (await layer.receive("warm"))["type"] == "x"
    waiting = asyncio.ensure_future(layer.receive("plain"))
    await _busy_for(redis_fresh, 0.8)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(
        layer.send("plain", {"type": "during"}),
        layer.group_add("g", member),
        *(layer.send(member, {"type": "direct", "n": n}) for n in range(3))), WAIT)
    await asyncio.wait_for(layer.group_send("g", {"type": "group"}), WAIT)
    took = time.monotonic() - started
    print(f"\nsends answered BUSY went through {took:.2f} s later")
    await _not_busy(redis_fresh)
    assert (await asyncio.wait_for(waiting, WAIT))["type"] == "during"
    got = [await asyncio.wait_for(layer.receive(member), WAIT) for _ in range(4)]
    assert got == [{"type": "direct", "n": 0}, {"type": "direct", "n": 1},
                   {"type": "direct", "n": 2}, {"type": "group"}]
    await layer.flush()
    await layer.close()


async def test_a_send_refused_for_longer_than_the_retry_window_raises_naming_it(
        redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], retry_window=0.3)
    await layer.send("warm", {"type": "x"})
    await _busy_for(redis_fresh, 2.0)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match=r"BUSY.*retry_window"):
        await asyncio.wait_for(layer.send("late", {"type": "x"}), WAIT)
    with pytest.raises(RedisUnavailable, match=r"BUSY.*retry_window"):
        await asyncio.wait_for(layer.group_add("g", "late"), WAIT)
    took = time.monotonic() - started
    print(f"\nraised after {took:.2f} s (retry_window 0.3 s)")
    assert took < 1.9  # before the script ended
    await _not_busy(redis_fresh)
    await layer.send("after", {"type": "y"})  # the writer sends again as usual
    assert (await asyncio.wait_for(layer.receive("after"), WAIT))["type"] == "y"
    assert redis_fresh.command("EXISTS", f"{layer.prefix}:{{c:late}}") == b":0\r\n"
    await layer.flush()
    await layer.close()


async def test_the_distributor_and_workers_pushes_wait_too(redis_fresh: RedisServer) -> None:
    """The writer the distributor and the workers push through (acknowledged pushes too)."""
    state = LoopState(asyncio.get_running_loop(), parse_hosts([redis_fresh.url]), WAIT, str)
    writer = state.writer_for("nn:{w}:in")
    await writer.push("nn:{w}:in", b"first", 10, 60_000)  # connected, scripts loaded
    link = await state.topology.shard_for("nn:{w}:in").link()
    await link.call("RPUSH", "nn:{w}:p", b"taken")
    await _busy_for(redis_fresh, 0.5)
    pushed = writer.push("nn:{w}:in", b"second", 10, 60_000)
    acked = writer.acked_push("nn:{w}:p", b"taken", "nn:{w}:s", "nn:{w}:in", b"third", 10,
                              60_000)
    assert await asyncio.wait_for(acked, WAIT) == 1
    await asyncio.wait_for(pushed, WAIT)
    # (An acknowledged push goes before the plain pushes of its batch.)
    assert await link.call("LRANGE", "nn:{w}:in", 0, -1) == [b"first", b"third", b"second"]
    assert await link.call("LLEN", "nn:{w}:p") == 0
    await state.close()
