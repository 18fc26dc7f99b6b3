"""The edge's side of spread routes: which sub-queue each request goes to, and the announcement.

An edge configured with ``spread={'api': 3}`` queues the requests of route key ``api`` on its 3
sub-queues in turn (round-robin per edge process; ``protocol/spread.py`` names them), each push
ringing the route's doorbell when it makes its sub-queue non-empty (``RING_PUSH``). Every second,
with its presence, it announces the spread: ``SET <prefix>:{rt:api}:n:3 <edge id> PX 5000``. The
route's workers read the announcements every second and take from the sub-queues of every
spread announced (``worker/spread.py``), so workers need no setting of their own, and edges that
disagree during a change are all served. An edge queues on sub-queue 0 alone until its first
announcement is a little over a second old (by then every live worker of the route has read it),
and again whenever it could not announce for a few seconds (workers stop taking from sub-queues
nobody announces once they are empty).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator, Mapping

from ..exceptions import RedisUnavailable, ReplyError
from ..forwarding.hub import Hub
from ..protocol.spread import sub_queues
from ..transport.resp import ConnectionLost

__all__ = ["ANNOUNCED_MS", "EdgeSpread"]

logger = logging.getLogger(__name__)

#: How long an announcement lasts unless refreshed (every second, with the edge's presence).
ANNOUNCED_MS = 5_000
# Workers read the announcements once a second: after this long, all of them have.
_WARMUP = 1.5
# Sub-queues are used this long after the last announcement written: well within ANNOUNCED_MS.
_FRESH = 3.0


class EdgeSpread:
    """Picks the sub-queue of each request of a spread route, and announces the spreads."""

    def __init__(self, spread: Mapping[str, int], hub: Hub) -> None:
        self.hub = hub
        self.names = {key: sub_queues(key, n) for key, n in spread.items() if n > 1}
        self._turns: dict[str, Iterator[int]] = {
            key: itertools.cycle(range(len(names))) for key, names in self.names.items()}
        self._ready_at: float | None = None  # loop time from which sub-queues > 0 are used
        self._fresh_until = 0.0  # and until which (the last announcement written + _FRESH)
        keys = hub.keys
        for key, names in self.names.items():
            for name in names:
                hub.state.rings[keys.queue(name)] = keys.ring(key)

    def target(self, key: str) -> str:
        """The sub-queue (its internal name) the next request of route ``key`` goes to."""
        names = self.names.get(key)
        if names is None:
            return key
        ready, now = self._ready_at, self.hub.loop.time()
        if ready is None or not ready <= now < self._fresh_until:
            return key
        return names[next(self._turns[key])]

    async def announce(self) -> None:
        """Say which routes this edge spreads, and over how many (a failure is logged: the
        presence that calls this every second must not end over it)."""
        if not self.names:
            return
        keys, hub = self.hub.keys, self.hub
        try:
            calls = []
            for key, names in self.names.items():
                name = keys.spread(key, len(names))
                link = await hub.shard_for(name).link()
                calls.append(link.call("SET", name, hub.id, "PX", ANNOUNCED_MS))
            await asyncio.wait_for(asyncio.gather(*calls), 2.0)
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError,
                asyncio.TimeoutError) as exc:
            logger.warning("cannot announce the spread routes of %s: %s", hub.id, exc)
            return
        now = hub.loop.time()
        if self._ready_at is None or now > self._fresh_until:  # (again) after a gap
            self._ready_at = now + _WARMUP
        self._fresh_until = now + _FRESH
