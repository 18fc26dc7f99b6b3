"""Which Redis (or Valkey) a server runs, and what the package can do on it.

The package needs Redis 6.2 or later, or Valkey (any: Valkey forked from Redis 7.2): a worker
takes a request with ``BLMOVE``/``LMOVE`` and the layer pops batches with ``LPOP`` and a count,
all new in 6.2, with nothing to fall back to. On 6.2 it falls back twice: ``BLPOP`` then
``LPOP`` where 7.0 has ``BLMPOP`` (``reader.py``: one more round trip per batch), and a
``PEXPIRE`` the ACL refuses is found after the push rather than before (``redis.acl_check_cmd``
is 7.0's, ``scripts.py``). Redis Cluster needs 7.0: the slot map is read with ``CLUSTER
SHARDS`` (``cluster.py``), and a 6.2 cluster is refused at start.

The version is read from ``INFO server``, else from ``HELLO``, which any user may send (a
user with the channel layer's ACL only may not run ``INFO``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .eviction import parse_info

__all__ = ["CLUSTER_MINIMUM", "MINIMUM", "ServerVersion", "fallbacks", "from_hello", "from_info",
           "problem"]

MINIMUM = (6, 2)
CLUSTER_MINIMUM = (7, 0)
_VALKEY_AS_REDIS = (7, 2)  # what every Valkey offers, in Redis versions


@dataclass(frozen=True)
class ServerVersion:
    name: str  # "Redis" or "Valkey"
    number: tuple[int, ...]
    mode: str = "standalone"  # or "cluster", or "sentinel" (a Sentinel, not a Redis server)

    def __str__(self) -> str:
        return f"{self.name} {'.'.join(str(part) for part in self.number)}"

    @property
    def as_redis(self) -> tuple[int, ...]:
        """The Redis version whose commands this server has."""
        return _VALKEY_AS_REDIS if self.name == "Valkey" else self.number


def _number(text: str) -> tuple[int, ...] | None:
    found = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def _version(name: str, text: str, mode: str) -> ServerVersion | None:
    number = _number(text)
    if number is None:
        return None
    return ServerVersion("Valkey" if name.lower() == "valkey" else "Redis", number,
                         mode or "standalone")


def from_info(text: str) -> ServerVersion | None:
    """The version (and mode) an ``INFO server`` reply gives (Valkey says
    ``server_name:valkey`` and ``valkey_version``; its ``redis_version`` is the 7.2.4 it forked
    from)."""
    fields = parse_info(text)
    name = fields.get("server_name", "redis")
    return _version(name, fields.get(f"{name.lower()}_version") or fields.get("redis_version", ""),
                    fields.get("redis_mode", ""))


def from_hello(reply: Sequence[Any]) -> ServerVersion | None:
    """The version (and mode) a ``HELLO`` reply (RESP2: a flat list of names and values)
    gives."""
    fields = {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    return _version(_text(fields.get("server", "redis")), _text(fields.get("version", "")),
                    _text(fields.get("mode", "")))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def problem(version: ServerVersion, cluster: bool) -> tuple[str, str] | None:
    """(what is wrong, the fix) when the package cannot run on ``version``, as a cluster node
    when ``cluster``; None when it can."""
    have = version.as_redis
    if have < MINIMUM:
        return (f"{version} is too old for channels-distributed, which needs Redis 6.2 or later "
                "(BLMOVE, LMOVE, LPOP with a count); there is nothing to fall back to",
                "upgrade to Redis 7.0 or later (6.2 at least), or Valkey")
    if cluster and have < CLUSTER_MINIMUM:
        return (f"{version} is a Redis Cluster node: the package reads the slot map with "
                "CLUSTER SHARDS, which Redis Cluster has from 7.0; there is nothing to fall "
                "back to", "upgrade the cluster to Redis 7.0 or later, or Valkey; or point the "
                "hosts at standalone servers (several are sharded by hash tag) or at Sentinel")
    return None


def fallbacks(version: ServerVersion) -> str:
    """What the package does differently on ``version`` ("" when nothing)."""
    if MINIMUM <= version.as_redis < (7, 0):
        return ("BLPOP then LPOP in place of BLMPOP; a PEXPIRE the ACL refuses is found after "
                "the push, not before")
    return ""
