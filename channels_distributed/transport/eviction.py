"""Whether Redis may evict the package's keys: read from ``INFO memory``, checked once at start.

Every key the package writes has a TTL (nothing is left behind when a process dies), so under
any ``maxmemory-policy`` but ``noeviction`` a Redis at its ``maxmemory`` may evict work in flight:
queued requests, inbox entries (pieces of a body), leases. The forwarded connections notice a
lost entry and fail instead of delivering a short body, but the requests are lost all the same.
``INFO`` is read rather than ``CONFIG GET``, which managed services (ElastiCache, Memorystore,
Azure Cache) disable. ``check()`` is the one place that decides; the edge and the workers log
its warning once per server at start.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..exceptions import RedisUnavailable, ReplyError
from .resp import ConnectionLost
from .topology import Shard, Topology

__all__ = ["Eviction", "check", "parse_info", "warn_if_evicting"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Eviction:
    """A server's memory limit and eviction policy, and what they mean for work in flight."""

    server: str
    policy: str
    maxmemory: int  # bytes; 0: no limit

    @property
    def evicts(self) -> bool:
        """Whether keys of the package can be evicted (a limit, and a policy that evicts)."""
        return self.maxmemory > 0 and self.policy != "noeviction"

    def problem(self) -> str:
        """What evicting means here (the preflight shows it apart from the fix)."""
        return (f"Redis at {self.server} has maxmemory-policy {self.policy} with maxmemory "
                f"{self.maxmemory} bytes: at that limit it evicts keys of channels-distributed "
                "(queued requests, pieces of request and response bodies, channel messages), "
                "and the requests they belong to fail")

    #: How to stop it.
    FIX = ("Set maxmemory-policy to noeviction (a full Redis then refuses writes, which the "
           "package reports), or give this package a Redis of its own")

    def warning(self) -> str:
        return f"{self.problem()}. {self.FIX}"


def parse_info(text: str) -> dict[str, str]:
    """The ``field:value`` lines of an ``INFO`` reply."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


async def check(shard: Shard, timeout: float = 2.0) -> Eviction:
    """The eviction settings of the server behind ``shard`` (RedisUnavailable, ReplyError)."""
    link = await asyncio.wait_for(shard.link(), timeout)
    reply = await asyncio.wait_for(link.call("INFO", "memory"), timeout)
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    fields = parse_info(text)
    try:
        maxmemory = int(fields.get("maxmemory", "0"))
    except ValueError:
        maxmemory = 0
    return Eviction(shard.spec.describe(), fields.get("maxmemory_policy", "unknown"), maxmemory)


async def warn_if_evicting(topology: Topology) -> list[Eviction]:
    """Log a warning for every server of ``topology`` that may evict the package's keys; the
    settings read. A server that cannot be asked (down, INFO refused by an ACL) is skipped."""
    found = []
    for shard in list(topology.shards):
        try:
            eviction = await check(shard)
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError,
                asyncio.TimeoutError) as exc:
            logger.debug("could not read the eviction policy of %s: %s", shard.spec.describe(),
                         exc)
            continue
        if eviction.evicts:
            logger.warning("%s", eviction.warning())
        found.append(eviction)
    return found
