"""The worker's side of spread routes: which sub-queues of a route key it takes from, and how.

Every second, with its registration, a worker reads which spreads the route's edges announce
(``distributor/spread.py``: ``<prefix>:{rt:<key>}:n:<n>``, all in the key's slot, one MGET) and
takes from every sub-queue of each (``protocol/spread.py``), plus the key itself. A sub-queue no
edge announces any more is left only once it is empty and no registered worker holds a request
taken from it, so none is stranded; until then it is taken from and reaped as any other.

A route with one queue is taken from as always: ``BLMOVE`` waits on it. A route with several is
taken from by ``take_spread``: its one blocking wait is the doorbell (``doorbell.py``), and when it
rings, or after a second without a ring, the worker takes from every sub-queue with the
non-blocking ``TAKE`` script, all at once (one round trip), starting at a sub-queue that moves on
each time so that each gets an equal share of the free slots, and goes on while any had some.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from ..exceptions import RedisUnavailable, ReplyError
from ..forwarding.hub import Hub
from ..protocol.spread import MAX_SPREAD, covering
from ..transport.backoff import Backoff
from ..transport.queues import RouteQueue
from ..transport.resp import ConnectionLost
from ..transport.topology import Shard
from .doorbell import Doorbell

__all__ = ["Cover", "Routes", "take_spread"]

logger = logging.getLogger(__name__)

# The longest a spread route's worker waits for a ring before it looks anyway: the net under a
# ring lost with a dropped link, or refused by an ACL without +publish.
LOOK_EVERY = 1.0
_SPREADS = range(2, MAX_SPREAD + 1)


class Cover:
    """The sub-queues of one route key that this worker takes from."""

    def __init__(self, hub: Hub, key: str) -> None:
        self.hub = hub
        self.key = key
        self.queues: dict[str, RouteQueue] = {}
        self._add(key)
        self.ring = hub.keys.ring(key)

    @property
    def spread(self) -> bool:
        return len(self.queues) > 1

    def _add(self, name: str) -> None:
        keys = self.hub.keys
        self.queues[name] = RouteQueue(keys, self.hub.shard_for(keys.queue(name)), self.key,
                                       self.hub.id, name)

    async def refresh(self) -> None:
        """Take from the sub-queues of every spread announced now; leave those nobody
        announces once they are empty (reading fails as a command of the upkeep does)."""
        keys = self.hub.keys
        names = [keys.spread(self.key, n) for n in _SPREADS]
        link = await self.hub.shard_for(names[0]).link()
        values = await link.call("MGET", *names)
        wanted = covering(self.key, [n for n, v in zip(_SPREADS, values) if v is not None])
        for name in sorted(wanted - self.queues.keys()):
            self._add(name)
            logger.info("route %s: taking from its sub-queue %s too", self.key, name)
        for name in sorted(self.queues.keys() - wanted):
            route = self.queues[name]
            if await route.empty():
                del self.queues[name]
                route.close()
                await route.unregister()
                logger.info("route %s: sub-queue %s is no longer used", self.key, name)

    def shards(self) -> dict[Shard, frozenset[str]]:
        """Where this route's doorbell is heard (``doorbell.py``): the first server of a
        cluster, each server of a sub-queue otherwise."""
        topology = self.hub.topology
        if not self.spread:
            return {}
        if topology.cluster is not None:
            return {self.hub.presence_shard: frozenset({self.ring})}
        return {route.shard: frozenset({self.ring}) for route in self.queues.values()}


class Routes:
    """Every route key of a worker: its sub-queues, the loop taking from each, the doorbell."""

    def __init__(self, hub: Hub, keys: Iterable[str], taker: Taker,
                 plain: Callable[[RouteQueue, int], Coroutine[Any, Any, None]], most: int,
                 looks: int) -> None:
        """``plain(route, looks)``: the node's blocking take loop, for a route of one queue;
        ``most``: the most requests one look takes; ``looks``: reconciliations after a
        switch from one loop to the other."""
        self.covers = [Cover(hub, key) for key in keys]
        self.doorbell = Doorbell()
        self.takers: dict[str, asyncio.Task[None]] = {}
        self._taker, self._plain, self._most, self._looks = taker, plain, most, looks

    def start(self) -> None:
        for cover in self.covers:
            self.takers[cover.key] = asyncio.ensure_future(self._plain(cover.queues[cover.key],
                                                                       0))

    def queues(self) -> list[RouteQueue]:
        return [route for cover in self.covers for route in cover.queues.values()]

    async def upkeep(self, stopping: asyncio.Event | None, presence: Shard) -> None:
        """Every second: follow the spreads announced, stay registered, reap dead workers'
        requests (``presence``: the server where processes are present)."""
        for cover in self.covers:
            if stopping is not None and stopping.is_set():
                return
            was = cover.spread
            await cover.refresh()
            if cover.spread != was:
                self._switch(cover)
            for route in list(cover.queues.values()):
                await route.register()
                await route.reap(presence)
        self.doorbell.listen({shard: channels for cover in self.covers
                              for shard, channels in cover.shards().items()})

    def _switch(self, cover: Cover) -> None:
        """Take from ``cover`` the way its sub-queues now ask for. The loop replaced may have
        had a request moved by a blocking take it cancelled: the new one reconciles first."""
        self.takers[cover.key].cancel()
        if cover.spread:
            self.takers[cover.key] = asyncio.ensure_future(take_spread(
                cover, self.doorbell.event(cover.ring), self._taker, self._looks, self._most))
        else:
            self.takers[cover.key] = asyncio.ensure_future(self._plain(
                cover.queues[cover.key], self._looks))

    async def stop(self) -> list[asyncio.Task[None]]:
        """Stop listening for rings; the take loops, to be cancelled."""
        await self.doorbell.close()
        return list(self.takers.values())


class Taker(Protocol):
    """What ``take_spread`` needs of the node (``node.Node``)."""

    @property
    def room(self) -> asyncio.Event: ...  # set while it has room for more connections

    def free(self) -> int: ...  # how many more connections it may run now

    def dispatch(self, route: RouteQueue, raw: bytes) -> None: ...

    async def reconcile(self, route: RouteQueue) -> None: ...


async def take_spread(cover: Cover, ring: asyncio.Event, taker: Taker, looks: int,
                      most: int) -> None:
    """Take from every sub-queue of ``cover`` until cancelled: ``most`` at a time at most,
    shared evenly; ``looks`` first reconciliations of each processing list (a blocking take
    cancelled before this loop started may have moved a request there)."""
    backoff, turn = Backoff(), itertools.count()
    while True:
        await taker.room.wait()
        ring.clear()  # a ring from now on means: look again
        try:
            if looks:
                for route in list(cover.queues.values()):
                    await taker.reconcile(route)
                looks -= 1
            took = await _take_all(cover, taker, min(taker.free(), most), next(turn))
        except (RedisUnavailable, ConnectionLost, ReplyError, OSError) as exc:
            looks = 2
            logger.warning("cannot take from route %s (retrying): %s", cover.key, exc)
            await backoff.pause()
            continue
        backoff.reset()
        if not took:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ring.wait(), LOOK_EVERY)


async def _take_all(cover: Cover, taker: Taker, want: int, turn: int) -> int:
    """One look at every sub-queue at once, ``want`` requests at most in all; how many."""
    routes = list(cover.queues.values())
    if want <= 0 or not routes:
        return 0
    start = turn % len(routes)
    routes = (routes[start:] + routes[:start])[:want]  # fewer slots than queues: in turn
    shares = [want // len(routes) + (i < want % len(routes)) for i in range(len(routes))]
    found = await asyncio.gather(*(route.take(share) for route, share in zip(routes, shares)),
                                 return_exceptions=True)
    took, error = 0, None
    for route, entries in zip(routes, found):
        if isinstance(entries, BaseException):
            error = entries
            continue
        for raw in entries:
            taker.dispatch(route, raw)
        took += len(entries)
    if error is not None:
        # What the others took is served; a take that failed after Redis ran it left its
        # requests in the processing list, where the reconciliation finds them.
        raise error
    return took
