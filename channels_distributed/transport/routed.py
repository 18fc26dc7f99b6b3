"""A pipeline of commands on one key's shard, following Redis Cluster's redirections and waiting
out what Redis answers "not now".

For the calls that are not on the hot path (group membership): they await their replies, so a
redirection is followed here rather than failed. ``MOVED`` (the slot lives elsewhere now): the
slot map is refreshed and the pipeline sent once more to the slot's new shard. ``ASK`` (the slot
is being migrated): the pipeline is sent once to the node named, each command after ``ASKING``.
A command answered with a redirection did not run, so sending it again never runs it twice.

Every command sent here is idempotent (``ZADD``, ``EXPIRE``, ``ZREM``, ``ZREMRANGEBYSCORE``,
``ZRANGE``): a pipeline Redis answered "not now" (``CLUSTERDOWN`` while a failed primary's
replica takes over, ``TRYAGAIN``, ``LOADING``...), or whose connection was lost, is sent again
after a pause, until ``retry_window`` seconds after the first such answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..exceptions import RedisUnavailable
from .backoff import Backoff
from .cluster import asking, redirection
from .refusals import replies
from .resp import RespLink
from .topology import Topology

__all__ = ["run"]


async def run(topology: Topology, key: str, commands: list[tuple[Any, ...]],
              what: str) -> list[Any]:
    """The replies to ``commands`` (all on ``key``'s slot), or the first error, as
    ``refusals.replies`` raises it."""
    loop = asyncio.get_running_loop()
    backoff = Backoff(0.01, 0.1)  # Redis is up (it answered, or a link broke): soon again
    deadline = None
    while True:
        # (A shard that cannot connect has waited retry_window itself: its error is final.)
        link = await topology.shard_for(key).link()
        try:
            return await _attempt(topology, link, key, commands, what)
        except RedisUnavailable as exc:
            now = loop.time()
            deadline = deadline if deadline is not None else now + topology.retry_window
            pause = backoff.next()
            if now + pause > deadline:
                raise RedisUnavailable(f"{exc}; still so {topology.retry_window:g} s later "
                                       "(the layer's retry_window)") from exc
            await asyncio.sleep(pause)
            if topology.cluster is not None:
                with contextlib.suppress(RedisUnavailable):  # (the next attempt finds out)
                    await topology.cluster.refresh()


async def _attempt(topology: Topology, link: RespLink, key: str, commands: list[tuple[Any, ...]],
                   what: str) -> list[Any]:
    shard = topology.shard_for(key)
    answers = await asyncio.gather(*link.call_many(commands), return_exceptions=True)
    cluster = topology.cluster
    moved = next((r for r in map(redirection, answers) if r is not None), None)
    if moved is not None and cluster is not None:
        kind, host, port = moved
        if kind == "ASK":
            answers = await asking(shard.spec, host, port, commands)
        else:
            await cluster.refresh()
            shard = topology.shard_for(key)
            link = await shard.link()
            answers = await asyncio.gather(*link.call_many(commands), return_exceptions=True)
    return await replies([_settled(answer) for answer in answers], what, key, shard.spec)


def _settled(answer: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
    return future
