"""The channel layer's and the Redis transport's metrics, counted against real Redis servers and
read from the page as Prometheus parses it. Metrics are switched on for each test alone (the
process's meter is put in place and taken away): the rest of the suite runs with them off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from helpers import wait_for_async
from scrape import Samples, parse, value

from channels_distributed import RedisChannelLayer, metrics
from channels_distributed.embedded import RedisServer
from channels_distributed.exceptions import ChannelFull, RedisRefused, RedisUnavailable
from channels_distributed.metrics import pending
from channels_distributed.metrics.exposition import render
from channels_distributed.metrics.layer import LayerMeter

L = "channels_distributed_layer_"
R = "channels_distributed_redis_"
WAIT = 10.0


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pending, "_FLUSHES", list(pending._FLUSHES))  # the meter's, undone
    monkeypatch.setattr(metrics, "LAYER", LayerMeter())
    yield


def page() -> Samples:
    return parse(render(every_process=False).decode())


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_sends_receives_full_channels_and_group_fan_out(metered: None,
                                                              make_layer: object) -> None:
    layer: RedisChannelLayer = make_layer(capacity=2)  # type: ignore[operator]
    before = page()
    await layer.send("jobs", {"type": "a"})
    await layer.send("jobs", {"type": "b"})
    with pytest.raises(ChannelFull):
        await layer.send("jobs", {"type": "refused"})
    assert [(await layer.receive("jobs"))["type"] for _ in range(2)] == ["a", "b"]
    members = [await layer.new_channel() for _ in range(3)]
    for channel in members:
        await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "hello"})
    await layer.group_send("nobody", {"type": "lonely"})
    await layer.group_send("room", {"type": "hello"})  # each member holds two now: full
    await layer.group_send("room", {"type": "hello"})  # three members skipped
    for channel in members:
        assert [(await layer.receive(channel))["type"] for _ in range(2)] == ["hello"] * 2
    after = page()
    assert grew(before, after, f"{L}sends_total") == 3  # every send() tried
    assert grew(before, after, f"{L}receives_total") == 2 + 6
    assert grew(before, after, f"{L}channel_full_total", operation="send") == 1
    assert grew(before, after, f"{L}channel_full_total", operation="group_send") == 3
    assert grew(before, after, f"{L}group_send_members_count") == 4
    assert grew(before, after, f"{L}group_send_members_sum") == 9
    assert grew(before, after, f"{L}group_send_members_bucket", le="0.0") == 1
    await layer.flush()
    await layer.close()


async def test_redis_errors_and_reconnects(metered: None, redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_fresh.url], retry_window=0.3)
    before = page()
    await layer.send("warm", {"type": "x"})
    # Redis drops the layer's connections: lost, then opened again by the next send.
    redis_fresh.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    await wait_for_async(lambda: grew(before, page(), f"{R}errors_total", kind="lost") >= 1,
                         WAIT, "the lost connection to be counted")
    await layer.send("again", {"type": "x"})
    after = page()
    assert grew(before, after, f"{R}reconnects_total") == 1
    assert grew(before, after, f"{R}errors_total", kind="connect") == 0
    # Redis refuses a command for good: a key of another type under the prefix.
    redis_fresh.command("SET", f"{layer.prefix}:{{c:taken}}", "not a list")
    with pytest.raises(RedisRefused):
        await layer.send("taken", {"type": "x"})
    assert grew(after, page(), f"{R}errors_total", kind="refused") == 1
    # Redis gone: the send fails, and what failed is counted: the open connection lost, or
    # (on a machine slow to notice that) an attempt to connect again within the retry window.
    redis_fresh.stop(kill=True)
    down = page()
    with pytest.raises(RedisUnavailable):
        await asyncio.wait_for(layer.send("during", {"type": "x"}), WAIT)
    failed = page()
    assert grew(down, failed, f"{R}errors_total", kind="connect") + \
        grew(down, failed, f"{R}errors_total", kind="lost") >= 1
    await layer.close()
    # Closing the layer closes its connections on purpose: not counted as lost.
    redis_fresh.start()
    quiet = RedisChannelLayer(hosts=[redis_fresh.url])
    await quiet.send("x", {"type": "x"})
    calm = page()
    await quiet.close()
    assert grew(calm, page(), f"{R}errors_total", kind="lost") == 0


async def test_off_counts_nothing(make_layer: object) -> None:
    assert metrics.LAYER is None  # the suite runs with metrics off
    layer: RedisChannelLayer = make_layer()  # type: ignore[operator]
    before = page()
    await layer.send("jobs", {"type": "a"})
    await layer.receive("jobs")
    assert page() == before
    await layer.close()
