"""What group_send tells its caller: it returns once Redis has the message for every member,
skips members at capacity (logged at INFO, as channels_redis does), and raises when Redis
errors kept the message from members: never a silent return for a message nobody got."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer
from channels_distributed.exceptions import RedisUnavailable
from channels_distributed.protocol.keys import key_slot, local_owner

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)

WAIT = 10.0


def _server_of(key: str) -> int:
    """Which of two sharded servers holds ``key`` (slot * 2 // 16384)."""
    return key_slot(key) * 2 // 16384


async def _member_on(hosts: list[str], server: int) -> tuple[RedisChannelLayer, str]:
    """A receiving layer whose local list is on ``server``, and a channel of it."""
    while True:
        layer = RedisChannelLayer(hosts=hosts, prefix="ge", capacity=2)
        channel = await layer.new_channel()
        if _server_of(layer.keys.local_list(local_owner(channel))) == server:
            return layer, channel
        await layer.close()


async def test_group_send_raises_when_redis_errors_kept_the_message_from_members(
        caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer() as first, RedisServer() as second:
        hosts = [first.url, second.url]
        layer = RedisChannelLayer(hosts=hosts, prefix="ge", retry_window=0.3, capacity=2)
        group = next(f"g{i}" for i in range(1000) if _server_of(f"ge:{{g:g{i}}}") == 0)
        await layer.group_send(group, {"type": "to.nobody"})  # an empty group: returns
        near, near_channel = await _member_on(hosts, 0)
        far, far_channel = await _member_on(hosts, 1)
        for channel in (near_channel, far_channel):
            await layer.group_add(group, channel)
        await layer.group_add("far-only", far_channel)
        # A member at capacity is skipped and logged, as channels_redis does; the others get it.
        for n in range(2):
            await layer.send(far_channel, {"type": "fill", "n": n})
        with caplog.at_level(logging.INFO, logger="channels_distributed.layer"):
            await layer.group_send(group, {"type": "one"})
        assert "1 of 2 channels over capacity in group" in caplog.text
        assert (await asyncio.wait_for(near.receive(near_channel), WAIT))["type"] == "one"
        # The server of one member's local list is down: the group_send raises once retry_window
        # is over, though the other member got the message.
        second.stop(kill=True)
        with pytest.raises(RedisUnavailable):
            await asyncio.wait_for(layer.group_send(group, {"type": "two"}), WAIT)
        assert (await asyncio.wait_for(near.receive(near_channel), WAIT))["type"] == "two"
        assert _server_of("ge:{g:far-only}") == 0  # its set is readable, its member is not
        with pytest.raises(RedisUnavailable):
            await asyncio.wait_for(layer.group_send("far-only", {"type": "x"}), WAIT)
        for each in (layer, near, far):
            await each.close()
