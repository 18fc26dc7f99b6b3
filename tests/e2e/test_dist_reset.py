"""An accept for a connection the edge no longer has is answered with a reset, so the worker's
application learns that its client is gone instead of waiting for it forever."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import wait_for_async

from channels_distributed.conf import parse_hosts
from channels_distributed.forwarding.hub import Hub, now_ms
from channels_distributed.protocol.codec import decode_entry, encode_entry
from channels_distributed.protocol.envelope import (
    RESET,
    accept_event,
    decode_events,
    encode_events,
)
from channels_distributed.protocol.forwarding import EDGE


async def _late_accept(url: str) -> list[Any]:
    edge = Hub(parse_hosts([url]), "resettest", side=EDGE, retry_window=1.0)
    edge.start()
    worker_inbox = edge.keys.inbox("w-test")
    link = await edge.topology.shards[0].link()
    events = [accept_event("w-test", worker_inbox), {"type": "websocket.accept"}]
    await link.call("RPUSH", edge.inbox,
                    encode_entry("gone-conn", now_ms() + 60_000, encode_events(events)))
    entry = await wait_for_async(lambda: link.call("LPOP", worker_inbox),
                                 what="the edge's answer in the worker's inbox")
    await edge.close()
    target, _, payload = decode_entry(entry)
    return [target, decode_events(payload)[1]]  # a reset is sent outside the stream


def test_late_accept_gets_a_reset(redis_single: Any) -> None:
    target, events = asyncio.run(_late_accept(redis_single.servers[0].url))
    assert target == "gone-conn"
    assert events == [{"type": RESET}]
