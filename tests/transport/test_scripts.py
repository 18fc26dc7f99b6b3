"""Lua scripts: all in transport/scripts.py, and every one still runs after SCRIPT FLUSH."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import channels_distributed
from channels_distributed import RedisChannelLayer
from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import RedisServer
from channels_distributed.protocol.keys import DistKeys
from channels_distributed.transport import scripts
from channels_distributed.transport.loopstate import LoopState
from channels_distributed.transport.queues import RouteQueue
from channels_distributed.transport.scripts import OURS

PACKAGE = Path(channels_distributed.__file__).resolve().parent
HOME = PACKAGE / "transport" / "scripts.py"
# Lua, a command that runs a script, or the NOSCRIPT fallback: only the home of scripts has them.
SCRIPT_CODE = re.compile(r"redis\.p?call\(|[(\[]\"EVAL(SHA)?\"|NOSCRIPT|SCRIPT\", \"LOAD")


def test_every_script_lives_in_transport_scripts() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != HOME
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if SCRIPT_CODE.search(line)]
    assert not found, "script code outside transport/scripts.py:\n" + "\n".join(found)


async def _flushed(state: LoopState) -> Any:
    """The command link, open, on a server that has just forgotten every script."""
    link = await state.topology.shards[0].link()
    await link.call("SCRIPT", "FLUSH")
    return link


async def _queue_scripts(url: str) -> None:
    state = LoopState(asyncio.get_running_loop(), parse_hosts([url]), 1.0, str)
    keys = DistKeys("flushed")
    route = RouteQueue(keys, state.topology.shards[0], "r", "w-1")
    link = await _flushed(state)
    await link.call("RPUSH", route.queue, b"one", b"two", b"three")
    assert await route.take(2) == [b"one", b"two"]  # TAKE
    assert await route.ack(b"one", "c1") == OURS  # ACK
    await link.call("SCRIPT", "FLUSH")
    assert await route.give_back() == 1  # REQUEUE: b"two" back at the head
    assert await link.call("LRANGE", route.queue, 0, -1) == [b"two", b"three"]
    await link.call("SCRIPT", "FLUSH")
    state_key = keys.state("r", "c2")
    assert await scripts.GIVE_UP.run(link, [route.queue, state_key], [b"two", 1000]) == 1
    await state.close()


def test_queue_and_edge_scripts_run_after_script_flush(redis_fresh: RedisServer) -> None:
    asyncio.run(_queue_scripts(redis_fresh.url))


async def _writer_scripts(url: str) -> None:
    state = LoopState(asyncio.get_running_loop(), parse_hosts([url]), 1.0, str)
    writer = state.writer_for("flushed:{w}:in")
    await writer.push("flushed:{w}:in", b"before", 10, 60_000)  # connects, loads the scripts
    link = await _flushed(state)
    await writer.push("flushed:{w}:in", b"after", 10, 60_000)  # PUSH: NOSCRIPT, then as source
    await link.call("RPUSH", "flushed:{w}:p", b"taken")
    await link.call("SCRIPT", "FLUSH")
    acked = writer.acked_push("flushed:{w}:p", b"taken", "flushed:{w}:s", "flushed:{w}:in",
                              b"acked", 10, 60_000)
    assert await acked == 1  # ACKED_PUSH: NOSCRIPT, then as source
    assert await link.call("LRANGE", "flushed:{w}:in", 0, -1) == [b"before", b"after", b"acked"]
    await state.close()


def test_writer_scripts_run_after_script_flush(redis_fresh: RedisServer) -> None:
    asyncio.run(_writer_scripts(redis_fresh.url))


async def _layer_round_trip(url: str) -> list[dict[str, Any]]:
    layer = RedisChannelLayer(hosts=[url], prefix="flushed")
    await layer.send("work", {"n": 1})
    link = await layer._state().topology.shards[0].link()
    await link.call("SCRIPT", "FLUSH")
    await layer.send("work", {"n": 2})
    received = [await layer.receive("work"), await layer.receive("work")]
    await layer.close()
    return received


def test_layer_sends_after_script_flush(redis_fresh: RedisServer) -> None:
    assert asyncio.run(_layer_round_trip(redis_fresh.url)) == [{"n": 1}, {"n": 2}]
