"""The worker's side of spread routes: which sub-queues of a route key it takes from, and how.

Every second, with its registration, a worker reads which spreads the route's edges announce
(``distributor/spread.py``: ``<prefix>:{rt:<key>}:n:<n>``, all in the key's slot, one MGET) and
takes from every sub-queue of each (``protocol/spread.py``), plus the key itself. A sub-queue no
edge announces any more is left only once it is empty and no registered worker holds a request
taken from it, so none is stranded; until then it is taken from and reaped as any other.

A route with one queue is taken from as always: ``BLMOVE`` waits on it. A route with several is
taken from by ``take_spread``: its one blocking wait is the doorbell (``doorbell.py``), and when it
rings the worker takes from the sub-queues that rang, with the non-blocking ``TAKE`` script, all
at once (one round trip); it looks at every sub-queue after a second without a ring, and while
any gave all that was asked of it, starting at a sub-queue that moves on each time so that each
gets an equal share of the free slots.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from ..exceptions import RedisUnavailable, ReplyError
from ..forwarding.hub import Hub
from ..protocol.spread import MAX_SPREAD, covering
from ..transport.backoff import Backoff
from ..transport.queues import RouteQueue
from ..transport.refusals import complain
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
        shard = self.hub.shard_for(names[0])
        link = await shard.link()
        try:
            values = await link.call("MGET", *names)
        except ReplyError as exc:
            # Refused (an ACL of an older release, without +mget): logged at ERROR with the
            # fix; the registration and reaping that follow must go on whatever happens.
            complain(exc, "MGET", names[0], shard.spec)
            return
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
        """Where this route's doorbell is listened to (``doorbell.py``): on the server of each
        sub-queue. (A cluster would pass a ring on from any node, but over its bus: a hop
        that made the slowest 1% of rings three times slower on loopback.)"""
        if not self.spread:
            return {}
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
        self.doorbell = Doorbell(hub.shard_for)
        self.takers: dict[str, asyncio.Task[None]] = {}
        self._taker, self._plain, self._most, self._looks = taker, plain, most, looks
        self._stopped = False

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
            if self._stopped or (stopping is not None and stopping.is_set()):
                return
            was, before = cover.spread, set(cover.queues)
            await cover.refresh()
            if cover.spread != was and not self._stopped:  # (stop() may have come meanwhile)
                self._switch(cover)
            elif set(cover.queues) - before:  # new sub-queues: may hold requests already
                self.doorbell.ring_all(frozenset({cover.ring}))
            for route in list(cover.queues.values()):
                await route.register()
                await route.reap(presence)
        if not self._stopped:
            self.doorbell.listen({shard: channels for cover in self.covers
                                  for shard, channels in cover.shards().items()})

    def _switch(self, cover: Cover) -> None:
        """Take from ``cover`` the way its sub-queues now ask for. The loop replaced may have
        had a request moved by a blocking take it cancelled: the new one reconciles first."""
        self.takers[cover.key].cancel()
        if cover.spread:
            self.takers[cover.key] = asyncio.ensure_future(take_spread(
                cover, self.doorbell, self._taker, self._looks, self._most))
        else:
            self.takers[cover.key] = asyncio.ensure_future(self._plain(
                cover.queues[cover.key], self._looks))

    async def stop(self) -> list[asyncio.Task[None]]:
        """Stop listening for rings; the take loops, to be cancelled (no other starts)."""
        self._stopped = True
        await self.doorbell.close()
        return list(self.takers.values())


class Taker(Protocol):
    """What ``take_spread`` needs of the node (``node.Node``)."""

    @property
    def room(self) -> asyncio.Event: ...  # set while it has room for more connections

    def free(self) -> int: ...  # how many more connections it may run now

    def dispatch(self, route: RouteQueue, raw: bytes) -> None: ...

    async def reconcile(self, route: RouteQueue) -> None: ...


async def take_spread(cover: Cover, bell: Doorbell, taker: Taker, looks: int,
                      most: int) -> None:
    """Take from the sub-queues of ``cover`` until cancelled: ``most`` at a time at most,
    shared evenly; ``looks`` first reconciliations of each processing list (a blocking take
    cancelled before this loop started may have moved a request there). Once a look found
    every sub-queue empty, the next looks only at those that rang since."""
    backoff, turn, everything = Backoff(), itertools.count(), True
    ring = bell.event(cover.ring)
    while True:
        await taker.room.wait()
        ring.clear()  # a ring from now on means: look again
        heard = bell.heard(cover.ring)
        only, everything = (None if everything else heard), False
        try:
            if looks:
                for route in list(cover.queues.values()):
                    await taker.reconcile(route)
                looks -= 1
            more = await _take_all(cover, taker, min(taker.free(), most), next(turn), only)
        except (RedisUnavailable, ConnectionLost, ReplyError, OSError) as exc:
            looks, everything = 2, True
            logger.warning("cannot take from route %s (retrying): %s", cover.key, exc)
            await backoff.pause()
            continue
        backoff.reset()
        if more:  # a sub-queue gave all that was asked of it, or was not looked at
            everything = True
            continue
        try:  # every sub-queue looked at was emptied since the ring was cleared: wait for one
            await asyncio.wait_for(ring.wait(), LOOK_EVERY)
        except asyncio.TimeoutError:
            everything = True  # the net under a lost ring


async def _take_all(cover: Cover, taker: Taker, want: int, turn: int,
                    only: set[str] | None = None) -> bool:
    """One look at every sub-queue at once (those whose queue key is in ``only``, if given),
    ``want`` requests at most in all. Whether one may hold more: it gave all that was asked of
    it, or was not looked at. A sub-queue that gave less was empty when looked at, so a later
    push to it rings."""
    if want <= 0:
        return True
    routes = [route for route in cover.queues.values() if only is None or route.queue in only]
    if not routes:
        return False
    start, count = turn % len(routes), len(routes)
    routes = (routes[start:] + routes[:start])[:want]  # fewer slots than queues: in turn
    shares = [want // len(routes) + (i < want % len(routes)) for i in range(len(routes))]
    found = await asyncio.gather(*(route.take(share) for route, share in zip(routes, shares)),
                                 return_exceptions=True)
    more, error = len(routes) < count, None
    for route, entries, share in zip(routes, found, shares):
        if isinstance(entries, BaseException):
            error = entries
            continue
        for raw in entries:
            taker.dispatch(route, raw)
        more = more or len(entries) == share
    if error is not None:
        # What the others took is served; a take that failed after Redis ran it left its
        # requests in the processing list, where the reconciliation finds them.
        raise error
    return more
