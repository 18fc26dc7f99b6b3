"""A worker's doorbell: one pub/sub subscription to the ring channels of its spread routes.

A push that makes a sub-queue of a spread route non-empty publishes on the route's channel
(``RING_PUSH``). The worker holds one subscription for all of them, which is its one blocking wait
for a spread route whatever the number of sub-queues: a blocking pop covers keys of one slot only
on Redis Cluster, and a spread route's sub-queues are in different slots on purpose. A plain
PUBLISH reaches the subscribers of every node of a cluster, so one link to one node hears every
ring; several standalone servers share nothing, so there the worker subscribes on each server
holding one of the sub-queues. A link that drops or is (re)made rings every route (a ring may
have been lost meanwhile); the take loop looks at least once a second whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self._wanted: dict[Shard, frozenset[str]] = {}
        self._bells: dict[Shard, tuple[asyncio.Task[None], list[RespLink | None]]] = {}

    def event(self, channel: str) -> asyncio.Event:
        event = self.events.get(channel)
        if event is None:
            event = self.events[channel] = asyncio.Event()
        return event

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
                link.on_push = self._heard
                await asyncio.wait_for(link.call("SUBSCRIBE", *sorted(channels)), 2.0)
                backoff.reset()
                self._ring_all(channels)  # rings may have been lost while unsubscribed
                await link.wait_closed()
            except (RedisUnavailable, ReplyError, OSError, asyncio.TimeoutError) as exc:
                if isinstance(exc, ReplyError):
                    complain(exc, "SUBSCRIBE", None, shard.spec)
                logger.debug("doorbell on %s lost: %s", shard.spec.describe(), exc)
            finally:
                if holder[0] is not None:
                    holder[0].close()
            self._ring_all(channels)
            await backoff.pause()

    def _ring_all(self, channels: frozenset[str]) -> None:
        for channel in channels:
            self.event(channel).set()

    def _heard(self, reply: Any) -> None:
        # ["message", channel, ""]; the confirmations of a SUBSCRIBE of several channels
        # (["subscribe", channel, n] after the first) come this way too, and say nothing.
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            event = self.events.get(reply[1].decode())
            if event is not None:
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
