"""Acknowledged pushes: many in one loop turn go out as one step, each keeping its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.conf import parse_hosts
from channels_distributed.transport.loopstate import LoopState
from channels_distributed.transport.scripts import FULL, GIVEN_UP, OURS, REAPED


async def _batch(url: str, prefix: str) -> tuple[list[Any], list[bytes], list[bytes], list[Any]]:
    state = LoopState(asyncio.get_running_loop(), parse_hosts([url]), 1.0, str)
    processing, inbox, other = f"{prefix}:{{r}}:p", f"{prefix}:{{r}}:in", f"{prefix}:{{r}}:in2"
    link = await state.topology.shards[0].link()
    await link.call("RPUSH", processing, b"taken-1", b"taken-2", b"taken-3", b"taken-4")
    await link.call("RPUSH", other, b"x")
    # The distributor gave up on request 3 (its state key says so) before it was acknowledged.
    await link.call("SET", f"{prefix}:{{r}}:s:3", "c")
    writer = state.writer_for(inbox)
    state_of = [f"{prefix}:{{r}}:s:{n}" for n in range(5)]
    ack = writer.acked_push
    futures = [
        ack(processing, b"taken-1", state_of[1], inbox, b"first", 3, 60_000),
        ack(processing, b"reaped", state_of[0], inbox, b"never", 3, 60_000),
        ack(processing, b"taken-2", state_of[2], inbox, b"second", 3, 60_000),
        ack(processing, b"taken-3", state_of[3], inbox, b"late", 3, 60_000),
        ack(processing, b"taken-4", state_of[4], other, b"full", 1, 60_000),
    ]
    results = await asyncio.gather(*futures)
    states = [await link.call("GET", key) for key in state_of]
    pushed = await link.call("LRANGE", inbox, 0, -1)
    left = await link.call("LRANGE", processing, 0, -1)
    await state.close()
    return results, pushed, left, states


def test_acked_pushes_of_one_turn_answer_each(redis_single: Any) -> None:
    results, pushed, left, states = asyncio.run(_batch(redis_single.servers[0].url, "ackbatch"))
    # Each answer has one meaning: given back by a reaper (REAPED): nothing pushed; given up by
    # the distributor (GIVEN_UP): never delivered, and its mark is gone with it; the list full
    # (FULL): acknowledged, nothing pushed.
    assert results == [OURS, REAPED, OURS, GIVEN_UP, FULL]
    assert pushed == [b"first", b"second"]  # in order, one push each
    assert left == []  # every request that was ours is out of the processing list
    assert states == [None, None, None, None, None]  # nothing is written per request
