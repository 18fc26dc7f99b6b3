"""A worker's doorbell: one pub/sub subscription to the ring channels of its spread routes.

A push that makes a sub-queue of a spread route non-empty publishes on the route's channel
(``RING_PUSH``). The worker holds one subscription for all of them, which is its one blocking wait
for a spread route whatever the number of sub-queues: a blocking pop covers keys of one slot only
on Redis Cluster, and a spread route's sub-queues are in different slots on purpose. The worker
subscribes on each server holding one of the sub-queues: standalone servers share nothing, and a
cluster, which passes a plain PUBLISH on to every node, does so over its bus, a slower hop than
hearing the ring where it was published. A ring carries its sub-queue's key, and a link hears
only the rings of the sub-queues its server holds: the copies a cluster passes on are ignored,
where each would have made the worker look at every sub-queue once more for nothing.
So "one wait" is one set of events fed by one link per server, never one blocked command per
sub-queue. A link that drops or is (re)made rings every route (a ring may have been lost
meanwhile); the take loop looks at least once a second whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import RedisUnavailable, ReplyError
from ..transport.backoff import Backoff
from ..transport.refusals import complain
from ..transport.resp import RespLink
from ..transport.topology import Shard

__all__ = ["Doorbell"]

logger = logging.getLogger(__name__)


class Doorbell:
    """Ring channels -> events set when a message arrives on them."""

    def __init__(self, locate: Callable[[str], Shard]) -> None:
        """``locate``: the server holding a key (``Topology.shard_for``)."""
        self.locate = locate
        self.events: dict[str, asyncio.Event] = {}
        self._rung: dict[str, set[str]] = {}  # channel -> keys of the sub-queues rung since
        self._everything: set[str] = set()  # channels whose every sub-queue may hold some
        self._wanted: dict[Shard, frozenset[str]] = {}
        self._bells: dict[Shard, tuple[asyncio.Task[None], list[RespLink | None]]] = {}

    def event(self, channel: str) -> asyncio.Event:
        event = self.events.get(channel)
        if event is None:
            event = self.events[channel] = asyncio.Event()
        return event

    def heard(self, channel: str) -> set[str] | None:
        """The keys of the sub-queues rung on ``channel`` since the last call; None when any
        sub-queue may have been (a ring may have been lost: ``ring_all``)."""
        rung = self._rung.pop(channel, set())
        if channel in self._everything:
            self._everything.discard(channel)
            return None
        return rung

    def listen(self, wanted: dict[Shard, frozenset[str]]) -> None:
        """Subscribe to these channels on these servers (and to nothing else)."""
        if wanted == self._wanted:
            return
        for shard in list(self._bells):
            if wanted.get(shard) != self._wanted.get(shard):
                task, dropped = self._bells.pop(shard)
                task.cancel()
                if dropped[0] is not None:
                    dropped[0].close()
        for shard, channels in wanted.items():
            if channels and shard not in self._bells:
                holder: list[RespLink | None] = [None]
                task = asyncio.ensure_future(self._subscribe(shard, channels, holder))
                self._bells[shard] = (task, holder)
        self._wanted = dict(wanted)

    async def _subscribe(self, shard: Shard, channels: frozenset[str],
                         holder: list[RespLink | None]) -> None:
        backoff = Backoff()
        while True:
            try:
                link = holder[0] = await shard.connect_once("doorbell")
                link.on_push = functools.partial(self._heard, shard)
                await asyncio.wait_for(link.call("SUBSCRIBE", *sorted(channels)), 2.0)
                backoff.reset()
                self.ring_all(channels)  # rings may have been lost while unsubscribed
                await link.wait_closed()
            except (RedisUnavailable, ReplyError, OSError, asyncio.TimeoutError) as exc:
                if isinstance(exc, ReplyError):
                    complain(exc, "SUBSCRIBE", None, shard.spec)
                logger.debug("doorbell on %s lost: %s", shard.spec.describe(), exc)
            finally:
                if holder[0] is not None:
                    holder[0].close()
            self.ring_all(channels)
            await backoff.pause()

    def ring_all(self, channels: frozenset[str]) -> None:
        """As if every sub-queue of these channels' routes had rung."""
        for channel in channels:
            self._everything.add(channel)
            self.event(channel).set()

    def _heard(self, shard: Shard, reply: Any) -> None:
        # ["message", channel, sub-queue key]; the confirmations of a SUBSCRIBE of several
        # channels (["subscribe", channel, n] after the first) come this way too, and say
        # nothing. A ring of a sub-queue another server holds is a copy: heard there.
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            channel, key = reply[1].decode(), reply[2].decode(errors="replace")
            event = self.events.get(channel)
            if event is not None and self.locate(key) is shard:
                self._rung.setdefault(channel, set()).add(key)
                event.set()

    async def close(self) -> None:
        bells, self._bells = self._bells, {}
        self._wanted = {}
        for task, holder in bells.values():
            task.cancel()
            if holder[0] is not None:
                holder[0].close()
        for task, _ in bells.values():
            with contextlib.suppress(BaseException):
                await task
