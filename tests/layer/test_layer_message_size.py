"""``max_message_size``: a message over it raises at once, naming the setting; one under it goes.

Before, nothing checked the size: a message over Redis' ``proto-max-bulk-len`` failed after
17 s with "invalid bulk length", which names no setting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import unique_prefix

from channels_distributed import RedisChannelLayer
from channels_distributed.conf.layer import MAX_MESSAGE_SIZE
from channels_distributed.exceptions import MessageTooLarge

WAIT = 10.0
LIMIT = 1_000_000


async def test_a_message_over_the_limit_raises_at_once_and_one_under_it_goes(
        redis_single: Any) -> None:
    layer = RedisChannelLayer(hosts=redis_single.hosts, prefix=unique_prefix(),
                              max_message_size=LIMIT)
    member = await layer.new_channel()
    await layer.group_add("g", member)
    started = time.monotonic()
    with pytest.raises(MessageTooLarge, match=r"channel 'big' .* max_message_size of 1,000,000"):
        await layer.send("big", {"data": b"x" * LIMIT})
    with pytest.raises(MessageTooLarge, match=r"group 'g' .* max_message_size of 1,000,000"):
        await layer.group_send("g", {"data": b"x" * LIMIT})
    took = time.monotonic() - started
    print(f"\nraised after {took * 1000:.1f} ms")
    assert took < 1.0
    assert redis_single.keys(f"{layer.prefix}:{{c:big}}") == []

    under = b"y" * (LIMIT - 100)  # the entry adds the channel name and expiry (~30 bytes)
    await layer.send("big", {"data": under})
    await layer.group_send("g", {"data": under})
    assert (await asyncio.wait_for(layer.receive("big"), WAIT))["data"] == under
    assert (await asyncio.wait_for(layer.receive(member), WAIT))["data"] == under
    await layer.flush()
    await layer.close()


async def test_messages_up_to_the_default_limit_go_and_larger_ones_raise(
        redis_single: Any) -> None:
    """The default (64 MiB) holds for both sides: a message just under it is delivered, one
    of it raises before anything is written. So with the defaults no message reaches Redis'
    own limit (proto-max-bulk-len, 512 MB)."""
    layer = RedisChannelLayer(hosts=redis_single.hosts, prefix=unique_prefix())
    started = time.monotonic()
    with pytest.raises(MessageTooLarge, match="max_message_size of 67,108,864 bytes"):
        await layer.send("huge", {"data": b"z" * MAX_MESSAGE_SIZE})
    refused = time.monotonic() - started
    data = bytes(range(256)) * ((MAX_MESSAGE_SIZE - 100) // 256)
    started = time.monotonic()
    await layer.send("huge", {"data": data})
    assert (await asyncio.wait_for(layer.receive("huge"), WAIT))["data"] == data
    print(f"\n64 MiB refused in {refused:.2f} s; {len(data):,} bytes delivered in "
          f"{time.monotonic() - started:.2f} s")
    await layer.close()
