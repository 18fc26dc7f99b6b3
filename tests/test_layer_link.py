"""The Redis link on the stock asyncio loop: closes that Redis starts, and big writes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer

WAIT = 10.0


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


async def _wait_for_clients(server: RedisServer, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while server.command("CLIENT", "LIST").count(b"id=") - 1 < count:
        assert asyncio.get_running_loop().time() < deadline, "the layer never connected"
        await asyncio.sleep(0.02)


async def test_a_close_that_redis_starts_logs_no_error(
        redis_fresh: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """CLIENT KILL, an idle timeout, a restart: Redis closes first, the loop calls
    eof_received(). On the stock asyncio loop a protocol without it logged "Fatal error:
    protocol.eof_received() call failed" with a traceback for every such close."""
    assert type(asyncio.get_running_loop()).__module__.startswith("asyncio")
    caplog.set_level(logging.WARNING)
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "warm"})  # the command link
    await layer.receive(channel)
    waiting = asyncio.ensure_future(layer.receive(channel))  # a blocking link, parked in a pop
    await _wait_for_clients(redis_fresh, 2)
    assert redis_fresh.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") != b":0\r\n"
    shard = layer._state().topology.shards[0]
    while shard.connected_link is not None:  # a send racing the close may fail: not this test
        await asyncio.sleep(0.01)
    await layer.send(channel, {"type": "after-kill"})
    assert (await asyncio.wait_for(waiting, WAIT))["type"] == "after-kill"
    assert _errors(caplog) == []
    assert "AttributeError" not in caplog.text
    await layer.close()


async def test_a_write_bigger_than_the_socket_buffer_logs_no_error(
        redis_fresh: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """A write that the socket cannot take at once makes the transport call pause_writing()
    (and resume_writing() once drained); without them asyncio logged an error for each."""
    caplog.set_level(logging.WARNING)
    layer = RedisChannelLayer(hosts=[redis_fresh.url])
    channel = await layer.new_channel()
    body = b"\x01" * (32 * 1024 * 1024)
    await layer.send(channel, {"type": "big", "body": body})
    assert (await asyncio.wait_for(layer.receive(channel), WAIT))["body"] == body
    assert _errors(caplog) == []
    await layer.close()
