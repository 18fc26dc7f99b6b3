"""Acknowledged pushes: many in one loop turn go out as one step, each keeping its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.conf import parse_hosts
from channels_distributed.transport.loopstate import LoopState


async def _batch(url: str, prefix: str) -> tuple[list[Any], list[bytes], list[bytes]]:
    state = LoopState(asyncio.get_running_loop(), parse_hosts([url]), 1.0, str)
    processing, inbox, other = f"{prefix}:{{r}}:p", f"{prefix}:{{r}}:in", f"{prefix}:{{r}}:in2"
    link = await state.topology.shards[0].link()
    await link.call("RPUSH", processing, b"taken-1", b"taken-2", b"taken-4")
    await link.call("RPUSH", other, b"x")
    writer = state.writer_for(inbox)
    futures = [
        writer.acked_push(processing, b"taken-1", inbox, b"first", 2, 60_000),
        writer.acked_push(processing, b"reaped", inbox, b"never", 2, 60_000),
        writer.acked_push(processing, b"taken-2", inbox, b"second", 2, 60_000),
        writer.acked_push(processing, b"taken-4", other, b"full", 1, 60_000),
    ]
    results = await asyncio.gather(*futures)
    pushed = await link.call("LRANGE", inbox, 0, -1)
    left = await link.call("LRANGE", processing, 0, -1)
    await state.close()
    return results, pushed, left


def test_acked_pushes_of_one_turn_answer_each(redis_single: Any) -> None:
    results, pushed, left = asyncio.run(_batch(redis_single.servers[0].url, "ackbatch"))
    # Not ours any more (-1): nothing pushed. Full list (0): acknowledged, nothing pushed.
    assert results == [1, -1, 1, 0]
    assert pushed == [b"first", b"second"]  # in order, one push each
    assert left == []  # every request that was ours is acknowledged
