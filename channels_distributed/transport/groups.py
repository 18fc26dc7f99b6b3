"""Group membership: one sorted set per group, each member scored by when it (re)joined.

A member that has not re-joined within the group expiry is dropped when the group is next read,
and the whole set expires with its last ``group_add``: the channel layer's ``group_add``,
``group_discard`` and the member list of ``group_send``. The fan-out itself goes through the
batched writer, one push per receiving list (``layer.py``). On Redis Cluster a group's commands
follow the slot if it moves (``routed.py``).
"""

from __future__ import annotations

from .routed import run
from .topology import Topology

__all__ = ["add", "discard", "members"]


async def add(topology: Topology, key: str, channel: str, now: float, ttl: int) -> None:
    """Add ``channel`` to the group at ``key`` (or refresh it), keeping the group ``ttl`` s."""
    await run(topology, key, [("ZADD", key, now, channel), ("EXPIRE", key, ttl)], "ZADD, EXPIRE")


async def discard(topology: Topology, key: str, channel: str) -> None:
    await run(topology, key, [("ZREM", key, channel)], "ZREM")


async def members(topology: Topology, key: str, oldest: float) -> list[str]:
    """The group's channels, after dropping those that joined before ``oldest``."""
    _, found = await run(topology, key, [("ZREMRANGEBYSCORE", key, "-inf", f"({oldest}"),
                                         ("ZRANGE", key, 0, -1)], "ZREMRANGEBYSCORE, ZRANGE")
    return [member.decode() for member in found]
