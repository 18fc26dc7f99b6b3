"""The edge's side of spread routes, in memory: the warm-up, the turns, the fallback to the route
key when announcing fails, and the doorbells registered for the writer."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.distributor.spread import ANNOUNCED_MS, EdgeSpread
from channels_distributed.exceptions import RedisUnavailable
from channels_distributed.protocol.keys import DistKeys
from channels_distributed.protocol.spread import sub_queues


class _Link:
    def __init__(self, hub: _Hub) -> None:
        self.hub = hub

    def call(self, *args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.hub.down:
            future.set_exception(RedisUnavailable("down"))
        else:
            self.hub.calls.append(args)
            future.set_result(b"OK")
        return future


class _Shard:
    def __init__(self, hub: _Hub) -> None:
        self.hub = hub

    async def link(self) -> _Link:
        return _Link(self.hub)


class _State:
    def __init__(self) -> None:
        self.rings: dict[str, str] = {}


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now


class _Hub:
    def __init__(self) -> None:
        self.keys, self.id, self.state, self.loop = DistKeys("p"), "d-1", _State(), _Clock()
        self.calls: list[tuple[Any, ...]] = []
        self.down = False

    def shard_for(self, key: str) -> _Shard:
        return _Shard(self)


async def _run() -> None:
    hub = _Hub()
    spread = EdgeSpread({"api": 3, "site": 1}, hub)  # type: ignore[arg-type]
    names = sub_queues("api", 3)
    assert hub.state.rings == {DistKeys("p").queue(name): "p:ring:api" for name in names}
    assert spread.target("api") == "api" and spread.target("site") == "site"  # not announced
    await spread.announce()
    assert hub.calls == [("SET", "p:{rt:api}:n:3", "d-1", "PX", ANNOUNCED_MS)]
    hub.loop.now += 1.0
    assert spread.target("api") == "api"  # workers may not have read it yet
    hub.loop.now += 0.6
    assert [spread.target("api") for _ in range(6)] == [*names, *names]
    hub.down = True
    await spread.announce()  # a failure is logged, never raised
    hub.loop.now += 3.0
    assert spread.target("api") == "api"  # not announced for 3 s: the route key alone
    hub.down = False
    await spread.announce()
    assert spread.target("api") == "api"  # warming up again
    hub.loop.now += 1.6
    assert spread.target("api") in names


def test_an_edge_spreads_only_what_its_workers_have_read() -> None:
    asyncio.run(_run())
