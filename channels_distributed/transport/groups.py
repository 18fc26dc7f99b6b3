"""Group membership, and the server side of ``group_send``.

One sorted set per group, each member scored by when it (re)joined. A member that has not
re-joined within the group expiry is dropped when the group is next sent to, and the whole set
expires with its last ``group_add``. Beside it, the group's lists key holds what a send needs of
the members, per receiving list (scripts.py): ``add`` and ``discard`` delete it after changing
the members, and the next send builds it again. On Redis Cluster a group's commands follow the
slot if it moves (``routed.py``).

``group_send`` runs as a script, one call per message (scripts.py): the script drops the expired
members and builds one entry per receiving list (a process's process-local channels share one)
from the payload the sender packed once. Where every list lives on the group's server (one
server, or Sentinel's master), ``fan_out`` has the script push the entries too: the whole
``group_send`` is one round trip. On Redis Cluster and sharded servers a script may only touch
its own slot, so ``entries`` has it return the entries, which the layer pushes through its
writers, one push per list (as it does with channel_capacity, whose patterns are the sender's to
apply).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..exceptions import RedisRefused, RedisUnavailable, ReplyError
from .backoff import Backoff
from .refusals import refusal
from .resp import ConnectionLost
from .routed import run
from .scripts import GROUP_ENTRIES, GROUP_SEND, lost
from .topology import Topology

__all__ = ["TOO_LARGE", "add", "discard", "entries", "fan_out", "members"]

#: ``fan_out``'s first figure when an entry was over the size limit (nothing was pushed).
TOO_LARGE = -1
_FAN_OUT = "EVALSHA (ZREMRANGEBYSCORE, ZRANGE, ZADD, UNLINK, PTTL, PEXPIRE, LLEN, RPUSH)"
_ENTRIES = "EVALSHA (ZREMRANGEBYSCORE, ZRANGE, ZADD, UNLINK, PTTL, PEXPIRE)"


async def add(topology: Topology, key: str, lists: str, channel: str, now: float,
              ttl: int) -> None:
    """Add ``channel`` to the group at ``key`` (or refresh it), keeping the group ``ttl`` s;
    ``lists`` is the group's lists key, deleted after the change (so never stale after it)."""
    await run(topology, key, [("ZADD", key, now, channel), ("EXPIRE", key, ttl),
                              ("UNLINK", lists)], "ZADD, EXPIRE, UNLINK")


async def discard(topology: Topology, key: str, lists: str, channel: str) -> None:
    await run(topology, key, [("ZREM", key, channel), ("UNLINK", lists)], "ZREM, UNLINK")


async def members(topology: Topology, key: str, oldest: float) -> list[str]:
    """The group's channels, after dropping those that joined before ``oldest``."""
    _, found = await run(topology, key, [("ZREMRANGEBYSCORE", key, "-inf", f"({oldest}"),
                                         ("ZRANGE", key, 0, -1)], "ZREMRANGEBYSCORE, ZRANGE")
    return [member.decode() for member in found]


async def entries(topology: Topology, keys: list[str], oldest: float, prefix: str,
                  tail: bytes) -> list[tuple[str, int, bytes]]:
    """Per receiving list of the group at ``keys`` (the group, its lists key): (list key, how
    many members it serves, its entry). Drops the members that joined before ``oldest``."""
    key, args = keys[0], [f"({oldest}", prefix, tail]
    try:
        [flat] = await run(topology, key, [GROUP_ENTRIES.command(keys, args)], _ENTRIES)
    except RedisRefused as exc:
        if not lost(exc):
            raise
        # The server lost the script (restarted, SCRIPT FLUSH): it ran nothing; sent as source.
        [flat] = await run(topology, key, [GROUP_ENTRIES.source_command(keys, args)], _ENTRIES)
    return [(flat[i].decode(), int(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]


async def fan_out(topology: Topology, keys: list[str], args: list[Any]) -> list[Any]:
    """Run the whole group_send on the group's server (which must hold every list): ``keys``
    (the group, its lists key) and ``args`` as GROUP_SEND takes them. Returns its reply:
    [members, full] (a refused expiry's error after them on Redis 6.2), or [TOO_LARGE, size]
    when nothing was pushed.

    Sent once, unless Redis answered "not now" (busy, loading, a failover: the script did not
    run), which is waited out for ``retry_window`` as a send's push is. A connection lost with
    the call in flight is never sent again: the script may have run, and at most once holds.
    """
    loop = asyncio.get_running_loop()
    key = keys[0]
    backoff = Backoff(0.01, 0.1)
    deadline = None
    while True:
        shard = topology.shard_for(key)
        link = await shard.link()  # (waits out an unreachable server for retry_window itself)
        try:
            reply: list[Any] = await GROUP_SEND.run(link, keys, args)
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
