"""Group membership, and the server side of ``group_send``.

One sorted set per group, each member scored by when it (re)joined. A member that has not
re-joined within the group expiry is dropped when the group is next read, and the whole set
expires with its last ``group_add``. On Redis Cluster a group's commands follow the slot if it
moves (``routed.py``).

``group_send`` runs as a script, one call per message (scripts.py): the script drops the expired
members, groups the rest by the list their messages wait in (a process's process-local channels
share one) and builds one entry per list from the payload the sender packed once. Where every
list lives on the group's server (one server, or Sentinel's master), ``fan_out`` has the script
push the entries too: the whole ``group_send`` is one round trip. On Redis Cluster and sharded
servers a script may only touch its own slot, so ``entries`` has it return the entries, which
the layer pushes through its writers, one push per list (as it does with channel_capacity, whose
patterns are the sender's to apply).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..exceptions import RedisRefused, RedisUnavailable, ReplyError
from .backoff import Backoff
from .refusals import refusal
from .resp import ConnectionLost
from .routed import run
from .scripts import GROUP_ENTRIES, GROUP_SEND
from .topology import Topology

__all__ = ["TOO_LARGE", "add", "discard", "entries", "fan_out", "members"]

#: ``fan_out``'s first figure when an entry was over the size limit (nothing was pushed).
TOO_LARGE = -1
_FAN_OUT = "EVALSHA (ZREMRANGEBYSCORE, ZRANGE, LLEN, RPUSH, PEXPIRE)"
_ENTRIES = "EVALSHA (ZREMRANGEBYSCORE, ZRANGE)"


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


async def entries(topology: Topology, key: str, oldest: float, prefix: str,
                  tail: bytes) -> list[tuple[str, str, int, bytes]]:
    """Per receiving list of the group at ``key``: (list key, its first member, how many
    members it serves, its entry). Drops the members that joined before ``oldest``."""
    args = [f"({oldest}", prefix, tail]
    try:
        [flat] = await run(topology, key, [GROUP_ENTRIES.command([key], args)], _ENTRIES)
    except RedisRefused as exc:
        if "NOSCRIPT" not in str(exc):
            raise
        # The server lost the script (restarted, SCRIPT FLUSH): it ran nothing; sent as source.
        [flat] = await run(topology, key, [GROUP_ENTRIES.source_command([key], args)], _ENTRIES)
    return [(flat[i].decode(), flat[i + 1].decode(), int(flat[i + 2]), flat[i + 3])
            for i in range(0, len(flat), 4)]


async def fan_out(topology: Topology, key: str, args: list[Any]) -> list[Any]:
    """Run the whole group_send on the group's server (which must hold every list): ``args``
    as GROUP_SEND takes them. Returns its reply: [members, full] (a refused expiry's error
    after them on Redis 6.2), or [TOO_LARGE, size] when nothing was pushed.

    Sent once, unless Redis answered "not now" (busy, loading, a failover: the script did not
    run), which is waited out for ``retry_window`` as a send's push is. A connection lost with
    the call in flight is never sent again: the script may have run, and at most once holds.
    """
    loop = asyncio.get_running_loop()
    backoff = Backoff(0.01, 0.1)
    deadline = None
    while True:
        shard = topology.shard_for(key)
        link = await shard.link()  # (waits out an unreachable server for retry_window itself)
        try:
            reply: list[Any] = await GROUP_SEND.run(link, [key], args)
            return reply
        except ConnectionLost as exc:
            raise RedisUnavailable(f"{exc} while the group_send to {key!r} was in flight; it "
                                   "may or may not have reached the group, and is not sent "
                                   "again (at most once)") from None
        except ReplyError as exc:
            error = refusal(exc, _FAN_OUT, key, shard.spec)
        if not isinstance(error, RedisUnavailable):
            raise error
        now = loop.time()
        deadline = deadline if deadline is not None else now + topology.retry_window
        pause = backoff.next()
        if now + pause > deadline:
            raise RedisUnavailable(f"{error}; still so {topology.retry_window:g} s later (the "
                                   "layer's retry_window)") from error
        await asyncio.sleep(pause)
