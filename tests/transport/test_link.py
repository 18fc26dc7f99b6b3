"""The Redis link on the stock asyncio loop: closes that Redis starts, and big writes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import wait_for_async

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer

WAIT = 10.0


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


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
    await wait_for_async(lambda: redis_fresh.command("CLIENT", "LIST").count(b"id=") - 1 >= 2,
                         WAIT, "the layer's two links to connect")
    assert redis_fresh.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") != b":0\r\n"
    shard = layer._state().topology.shards[0]
    # A send racing the close may fail: not this test.
    await wait_for_async(lambda: shard.connected_link is None, WAIT, "the link to drop")
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


_CLOSED_LOOP_SCRIPT = """
import asyncio, sys, time
from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer

server = RedisServer(port=int(sys.argv[1]))
how = sys.argv[2]

def clients():
    return server.command("CLIENT", "LIST").count(b"id=") - 1

layer = RedisChannelLayer(hosts=[server.url])

async def use():
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.receive(channel)  # the local list's reader now lingers in a blocking pop

loop = asyncio.new_event_loop()
loop.run_until_complete(use())
loop.close()  # without loop.shutdown_asyncgens(): nothing told the layer
print("open after close:", clients(), flush=True)
if how == "reuse":
    asyncio.run(layer.send("elsewhere", {"type": "x"}))
elif how == "close":
    asyncio.run(layer.close())
if how != "exit":
    deadline = time.monotonic() + 5
    while clients() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("open after release:", clients(), flush=True)
"""


@pytest.mark.parametrize("how", ["reuse", "close", "exit"])
def test_a_loop_closed_without_shutdown_releases_its_connections(
        redis_fresh: RedisServer, tmp_path, how: str) -> None:
    """A plain new_event_loop() ... close() never runs the layer's clean-up. Its connections
    stayed open until garbage collection, which printed "Task was destroyed but it is
    pending!". They are released the next time the layer is used from another loop or closed,
    and nothing is printed, not even at exit."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "closed_loop.py"
    script.write_text(_CLOSED_LOOP_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(script), str(redis_fresh.port), how],
                            capture_output=True, text=True, timeout=60, cwd=root,
                            env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert int(lines[0].rsplit(":", 1)[1]) >= 1  # the closed loop's connections were open
    if how != "exit":
        assert lines[1] == "open after release: 0"
    assert "Task was destroyed" not in result.stderr
    assert result.stderr == ""
