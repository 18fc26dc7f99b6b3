"""The Redis deployments the scale bench compares, started on free loopback ports, and the CPU
time Redis itself says it spent.

* ``1 server``: one ``redis-server``;
* ``3 shards``: three independent servers, named together in ``hosts`` (the layer and the
  distributor place each key by its slot over them);
* ``3-primary cluster``: a Redis Cluster of three primaries (``embedded.RedisCluster``), named
  by one node's URL, as a deployment names it.

The servers are ``channels_distributed.embedded``'s, the ones the test suite starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from channels_distributed.embedded import RedisCluster, RedisServer

__all__ = ["CLUSTER", "NAMES", "SHARDED", "SINGLE", "Topology", "redis_cpu"]

SINGLE, SHARDED, CLUSTER = "1 server", "3 shards", "3-primary cluster"
NAMES = (SINGLE, SHARDED, CLUSTER)
_CPU = re.compile(rb"^used_cpu_(?:sys|user):([\d.]+)\r?$", re.MULTILINE)


@dataclass
class Topology:
    """Running Redis servers: ``primaries`` carry the keys, ``hosts`` is what a layer, an edge
    or a worker is given (``--url`` once per entry)."""

    name: str
    primaries: list[RedisServer]
    hosts: list[str]
    cluster: RedisCluster | None = None
    _standalone: list[RedisServer] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, single: RedisServer | None = None) -> Topology:
        """Start ``name`` (one of ``NAMES``); ``single``: an already running server to use as
        the 1-server deployment (stopped by its owner, not by ``cleanup``)."""
        if name == SINGLE:
            owned = [] if single is not None else [RedisServer().start()]
            server = single or owned[0]
            return cls(name, [server], [server.url], _standalone=owned)
        if name == SHARDED:
            servers: list[RedisServer] = []
            try:
                for _ in range(3):
                    servers.append(RedisServer().start())
            except BaseException:
                for server in servers:
                    server.cleanup()
                raise
            return cls(name, servers, [s.url for s in servers], _standalone=servers)
        if name == CLUSTER:
            cluster = RedisCluster(3).start()
            return cls(name, cluster.primaries, [cluster.nodes[0].url], cluster=cluster)
        raise ValueError(f"unknown topology {name!r}: one of {NAMES}")

    def cpu(self) -> list[float]:
        """CPU seconds (user and system) each primary has spent so far."""
        return [redis_cpu(server) for server in self.primaries]

    def flush(self) -> None:
        for server in self.primaries:
            server.command("FLUSHALL")

    def cleanup(self) -> None:
        for server in self._standalone:
            server.cleanup()
        if self.cluster is not None:
            self.cluster.cleanup()


def redis_cpu(server: RedisServer) -> float:
    """``used_cpu_sys + used_cpu_user`` of ``INFO cpu``: what the server process spent, its
    threads included, as Redis counts it (the same as ``/proc`` would, read over the wire so a
    remote server could be measured alike)."""
    found = _CPU.findall(server.command("INFO", "cpu"))
    if len(found) != 2:
        raise RuntimeError(f"INFO cpu of {server.url} has no used_cpu_sys/used_cpu_user")
    return sum(float(value) for value in found)
