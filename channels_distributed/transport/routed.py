"""A pipeline of commands on one key's shard, following Redis Cluster's redirections.

For the calls that are not on the hot path (group membership): they await their replies, so a
redirection is followed here rather than failed. ``MOVED`` (the slot lives elsewhere now): the
slot map is refreshed and the pipeline sent once more to the slot's new shard. ``ASK`` (the slot
is being migrated): the pipeline is sent once to the node named, each command after ``ASKING``.
A command answered with a redirection did not run, so sending it again never runs it twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .cluster import asking, redirection
from .connection import Topology
from .refusals import replies

__all__ = ["run"]


async def run(topology: Topology, key: str, commands: list[tuple[Any, ...]],
              what: str) -> list[Any]:
    """The replies to ``commands`` (all on ``key``'s slot), or the first error, as
    ``refusals.replies`` raises it."""
    shard = topology.shard_for(key)
    link = await shard.link()
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
