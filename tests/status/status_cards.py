"""What the status tests put in Redis themselves, with the commands processes use: cards and the
directory (as ``transport.liveness.Presence`` writes them), route queue entries (as the edge
queues them), registries and processing lists (as workers keep them), channels and groups (as
the layer keeps them)."""

from __future__ import annotations

import json
import time
from typing import Any

import msgpack
from status_schema import validate

from channels_distributed.protocol.keys import DistKeys, KeySpace
from channels_distributed.transport.topology import Topology

__all__ = ["Writer", "edge_card", "process_card", "validate", "worker_card"]

CARD_MS = 3000


def process_card(process: str, side: str, **fields: Any) -> dict[str, Any]:
    now = time.time()
    card = {"id": process, "side": side, "host": "host-a", "pid": 4242, "version": "0.1.0",
            "protocol": 2, "build": "compiled", "python": "3.11.9", "started": now - 125,
            "at": now, "state": "serving"}
    card.update(fields)
    return card


def worker_card(process: str, routes: dict[str, dict[str, int]], **fields: Any
                ) -> dict[str, Any]:
    totals = {name: sum(r.get(name, 0) for r in routes.values())
              for name in ("in_flight", "served", "errors")}
    return process_card(process, "worker", concurrency=8, channels=[], routes=routes,
                        **{**totals, **fields})


def edge_card(process: str, routes: dict[str, dict[str, Any]], **fields: Any) -> dict[str, Any]:
    failures: dict[str, int] = {}
    for route in routes.values():
        for cause, count in route.get("failures", {}).items():
            failures[cause] = failures.get(cause, 0) + count
    made = {"open": 0, "worker_timeout": 5.0, "failures": failures,
            "requests": sum(r.get("requests", 0) for r in routes.values()),
            "served": sum(r.get("served", 0) for r in routes.values()), "routes": routes}
    return process_card(process, "edge", **{**made, **fields})


class Writer:
    """Writes into Redis under ``prefix`` through ``topology`` (each key on its server)."""

    def __init__(self, topology: Topology, prefix: str) -> None:
        self.topology = topology
        self.prefix = prefix
        self.keys = DistKeys(prefix)
        self.layer = KeySpace(prefix)

    async def run(self, key: str, *command: Any) -> Any:
        link = await self.topology.shard_for(key).link()
        return await link.call(*command)

    async def card(self, card: dict[str, Any], listed: bool = True) -> None:
        process = card["id"]
        key = self.keys.card(process)
        await self.run(key, "SET", key, json.dumps(card), "PX", CARD_MS)
        if listed:
            await self.listed(process)

    async def listed(self, process: str) -> None:
        directory = self.keys.directory()
        await self.run(directory, "ZADD", directory, int(time.time() * 1000), process)

    async def queue(self, route: str, **fields: Any) -> None:
        entry = {"t": "connect", "v": 2, "c": "conn", "s": {"type": "http", "path": "/"},
                 "r": "reply", "o": "origin", "d": int(time.time() * 1000) + 5000, **fields}
        key = self.keys.queue(route)
        await self.run(key, "RPUSH", key, msgpack.packb(entry))

    async def register(self, route: str, worker: str, taken: int = 0) -> None:
        registry = self.keys.registry(route)
        await self.run(registry, "SADD", registry, worker)
        processing = self.keys.processing(route, worker)
        for _ in range(taken):
            await self.run(processing, "RPUSH", processing, b"entry")

    async def channel(self, name: str, messages: int) -> None:
        key = self.layer.channel(name)
        await self.run(key, "RPUSH", key, *[b"m"] * messages)

    async def group(self, name: str, members: int) -> None:
        key = self.layer.group(name)
        pairs = [part for i in range(members) for part in (time.time(), f"c{i}")]
        await self.run(key, "ZADD", key, *pairs)
