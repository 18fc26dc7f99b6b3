"""Spread routes against a real Redis: the doorbell rings only when a push makes a sub-queue
non-empty, a worker follows the spreads edges announce and leaves a sub-queue nobody announces
only once nothing waits there, and one look at every sub-queue takes an equal share of each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from helpers import unique_prefix

from channels_distributed.conf import parse_hosts
from channels_distributed.exceptions import ChannelFull
from channels_distributed.forwarding.hub import Hub
from channels_distributed.protocol.forwarding import EDGE, WORKER
from channels_distributed.protocol.spread import sub_queues
from channels_distributed.transport.queues import RouteQueue
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL
from channels_distributed.transport.resp import open_link
from channels_distributed.worker.spread import Cover, _take_all


async def _doorbell(url: str, port: int) -> None:
    hub = Hub(parse_hosts([url]), unique_prefix(), side=EDGE, retry_window=2.0)
    queue, ring = hub.keys.queue(sub_queues("t", 2)[1]), hub.keys.ring("t")
    hub.state.rings[queue] = ring
    listener = await open_link(host="127.0.0.1", port=port)
    heard: list[Any] = []
    listener.on_push = heard.append
    await listener.call("SUBSCRIBE", ring)
    await hub.push(queue, b"a", 100, 60_000)  # empty -> non-empty: one ring
    await hub.push(queue, b"b", 100, 60_000)  # already waiting: none
    link = await hub.shard_for(queue).link()
    await link.call("DEL", queue)
    await hub.push(queue, b"c", 100, 60_000)  # empty again: one more
    await asyncio.sleep(0.1)
    assert heard == [[b"message", ring.encode(), queue.encode()]] * 2
    listener.close()
    await hub.close()


def test_a_push_rings_only_when_it_makes_the_sub_queue_non_empty(redis_single: Any) -> None:
    server = redis_single.servers[0]
    asyncio.run(_doorbell(server.url, server.port))


async def _follow(url: str) -> None:
    hub = Hub(parse_hosts([url]), unique_prefix(), side=WORKER, retry_window=2.0)
    link = await hub.shard_for(hub.keys.spread("t", 3)).link()
    cover = Cover(hub, "t")
    await cover.refresh()
    assert list(cover.queues) == ["t"] and not cover.spread  # nothing announced
    await link.call("SET", hub.keys.spread("t", 3), "d-1", "PX", 5000)
    await cover.refresh()
    assert set(cover.queues) == set(sub_queues("t", 3)) and cover.spread
    await link.call("DEL", hub.keys.spread("t", 3))
    last = sub_queues("t", 3)[2]
    await link.call("RPUSH", hub.keys.queue(last), b"waiting")
    await cover.refresh()  # no longer announced: left, but for the one a request waits on
    assert set(cover.queues) == {"t", last} and cover.spread
    await link.call("DEL", hub.keys.queue(last))
    await cover.refresh()
    assert list(cover.queues) == ["t"]
    await hub.close()


def test_a_worker_leaves_a_sub_queue_nobody_announces_once_it_is_empty(
        redis_single: Any) -> None:
    asyncio.run(_follow(redis_single.servers[0].url))


class _Taker:
    def __init__(self) -> None:
        self.room = asyncio.Event()
        self.taken: list[tuple[str, bytes]] = []

    def free(self) -> int:
        return 16

    def dispatch(self, route: RouteQueue, raw: bytes) -> None:
        self.taken.append((route.name, raw))

    async def reconcile(self, route: RouteQueue) -> None:
        pass


async def _fair(url: str) -> None:
    hub = Hub(parse_hosts([url]), unique_prefix(), side=WORKER, retry_window=2.0)
    link = await hub.shard_for(hub.keys.spread("t", 3)).link()
    await link.call("SET", hub.keys.spread("t", 3), "d-1", "PX", 5000)
    cover = Cover(hub, "t")
    await cover.refresh()
    names = sub_queues("t", 3)
    for name in names:
        await link.call("RPUSH", hub.keys.queue(name), *(f"{name}/{i}" for i in range(10)))
    taker = _Taker()
    assert await _take_all(cover, taker, 6, 0)  # 6 slots: 2 from each, and more wait
    assert sorted(name for name, _ in taker.taken) == sorted([*names, *names])
    taker.taken.clear()
    assert await _take_all(cover, taker, 2, 1)  # fewer slots than sub-queues: in turn
    assert [name for name, _ in taker.taken] == [names[1], names[2]]
    taker.taken.clear()
    rang = {hub.keys.queue(names[1])}  # after a ring: only the sub-queues that rang
    assert not await _take_all(cover, taker, 16, 0, rang)  # it gave less than asked: empty
    assert {name for name, _ in taker.taken} == {names[1]} and len(taker.taken) == 7
    taker.taken.clear()
    while await _take_all(cover, taker, 16, 2):
        pass  # a look that got less than it asked of every sub-queue: all were empty
    assert len(taker.taken) == 30 - 8 - 7
    await hub.close()


def test_one_look_takes_an_equal_share_of_every_sub_queue(redis_single: Any) -> None:
    asyncio.run(_fair(redis_single.servers[0].url))


async def _refused(url: str, prefix: str) -> None:
    hub = Hub(parse_hosts([url]), prefix, side=EDGE, retry_window=2.0)
    queue = hub.keys.queue(sub_queues("t", 2)[1])
    hub.state.rings[queue] = hub.keys.ring("t")
    await hub.push(queue, b"a", 100, 60_000)  # queued all the same
    link = await hub.shard_for(queue).link()
    assert await link.call("LLEN", queue) == 1
    await hub.close()


def test_a_refused_ring_still_queues_and_is_logged(redis_fresh: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    prefix = unique_prefix()
    rules = f"{LAYER_ACL} {WORKER_ACL}".replace("~asgi:", f"~{prefix}:").replace(
        "&asgi:", f"&{prefix}:").replace("+publish ", "")
    assert redis_fresh.command("ACL", "SETUSER", "noring", "reset", "on", ">pw",
                               *rules.split()) == b"+OK\r\n"
    url = f"redis://noring:pw@127.0.0.1:{redis_fresh.port}/0"
    with caplog.at_level(logging.ERROR):
        asyncio.run(_refused(url, prefix))
    assert any("refused to ring the doorbell" in r.getMessage() and "+publish" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


async def _no_mget(url: str, prefix: str) -> None:
    hub = Hub(parse_hosts([url]), prefix, side=WORKER, retry_window=2.0)
    cover = Cover(hub, "t")
    await cover.refresh()  # refused: logged, and the upkeep that calls it goes on
    assert list(cover.queues) == ["t"]
    await hub.close()


def test_a_worker_whose_acl_lacks_mget_keeps_its_upkeep(redis_fresh: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    prefix = unique_prefix()
    rules = f"{LAYER_ACL} {WORKER_ACL}".replace("~asgi:", f"~{prefix}:").replace(
        "&asgi:", f"&{prefix}:").replace("+mget ", "")
    assert redis_fresh.command("ACL", "SETUSER", "nomget", "reset", "on", ">pw",
                               *rules.split()) == b"+OK\r\n"
    with caplog.at_level(logging.ERROR):
        asyncio.run(_no_mget(f"redis://nomget:pw@127.0.0.1:{redis_fresh.port}/0", prefix))
    assert any("MGET" in r.getMessage() and "+mget" in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)


async def _capacity(url: str) -> None:
    hub = Hub(parse_hosts([url]), unique_prefix(), side=EDGE, retry_window=2.0)
    first, second = (hub.keys.queue(name) for name in sub_queues("t", 3)[1:])
    for queue in (first, second):
        hub.state.rings[queue] = hub.keys.ring("t")
    await hub.push(first, b"a", 1, 60_000)
    with pytest.raises(ChannelFull):  # each sub-queue holds queue_capacity requests
        await hub.push(first, b"b", 1, 60_000)
    await hub.push(second, b"c", 1, 60_000)
    await hub.close()


def test_queue_capacity_applies_to_each_sub_queue(redis_single: Any) -> None:
    asyncio.run(_capacity(redis_single.servers[0].url))
