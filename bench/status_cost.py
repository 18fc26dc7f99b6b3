"""What one ``channels-distributed status`` read costs Redis: commands, Redis time, wall time.

    .venv/bin/python bench/status_cost.py [--layer-keys 100000] [--processes 20]
                                          [--calls 20] [--servers 1]

A private redis-server (``embedded.RedisServer``; ``--servers 3`` shards over three) holding
``--layer-keys`` keys of a channel layer (two thirds groups of 1-5 members, one third channels
of 1-20 messages), the cards and directory entries of ``--processes`` processes (a quarter of
them edges, the rest workers; cards made by ``figures.py`` as processes make them), 8 route
keys with a few queued requests and registered workers. Nothing else runs: every command the
servers count between two INFO commandstats is the status's.

For the default scan limit without the layer's lists (``--top 0``) and with them, and for a scan
limit above the key count (the scan is complete), ``collect()`` runs ``--calls`` times on one
event loop (its connections are opened before). Printed per call: the commands by name and in
all, the time Redis spent running them (the ``usec`` of INFO commandstats) and the CPU time the
servers used in all (INFO cpu: reading the commands and writing the replies too; summed over
servers: what a status every second takes from Redis, as a share of one core), and the median
wall time of a call, which includes the round trips over loopback and the Python that builds
the dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the working tree's package

from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import RedisServer
from channels_distributed.figures import EdgeFigures, WorkerFigures
from channels_distributed.protocol.envelope import pack_connect
from channels_distributed.protocol.keys import DistKeys, KeySpace
from channels_distributed.status import SCAN_LIMIT, collect
from channels_distributed.status.collect import TOP
from channels_distributed.transport.topology import Topology

PREFIX = "asgi"
ROUTES = [f"route{i}" for i in range(8)]
_STAT = re.compile(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)")


def _stats(servers: list[RedisServer]) -> dict[str, tuple[int, int]]:
    total: dict[str, tuple[int, int]] = {}
    for server in servers:
        text = server.command("INFO", "commandstats").decode()
        for name, calls, usec in _STAT.findall(text):
            before = total.get(name, (0, 0))
            total[name] = (before[0] + int(calls), before[1] + int(usec))
    return total


def _cpu(servers: list[RedisServer]) -> float:
    """Seconds of CPU the servers used so far (user and system, every thread)."""
    used = 0.0
    for server in servers:
        text = server.command("INFO", "cpu").decode()
        used += sum(float(v) for v in re.findall(r"used_cpu_(?:sys|user):([\d.]+)", text))
    return used


async def _run(topology: Topology, key: str, commands: list[tuple[object, ...]]) -> None:
    link = await topology.shard_for(key).link()
    await asyncio.gather(*link.call_many(commands))


async def _fill(topology: Topology, layer_keys: int, processes: int) -> None:
    rng = random.Random(7)
    space, keys = KeySpace(PREFIX), DistKeys(PREFIX)
    for start in range(0, layer_keys, 1000):
        batch = []
        for index in range(start, min(start + 1000, layer_keys)):
            if index % 3:
                key = space.group(f"group{index}")
                pairs = [x for m in range(rng.randint(1, 5)) for x in (time.time(), f"c{m}")]
                batch.append((key, ("ZADD", key, *pairs)))
            else:
                key = space.channel(f"channel{index}")
                batch.append((key, ("RPUSH", key, *[b"m" * 100] * rng.randint(1, 20))))
        await asyncio.gather(*(_run(topology, key, [command]) for key, command in batch))
    for index in range(processes):
        await _card(topology, keys, index, rng)
    for route in ROUTES:
        queue = keys.queue(route)
        now = int(time.time() * 1000)
        entries = [pack_connect(f"c{i}", {"type": "http", "path": "/"}, "r", "o", now + 5000,
                                True, None, False, queued_ms=now) for i in range(3)]
        await _run(topology, queue, [("RPUSH", queue, *entries)])


async def _card(topology: Topology, keys: DistKeys, index: int, rng: random.Random) -> None:
    process = f"{'d' if index % 4 == 0 else 'w'}-benchhost-{1000 + index}-{index:010d}"
    if index % 4 == 0:
        figures: EdgeFigures | WorkerFigures = EdgeFigures(process, "edge", state="serving")
    else:
        figures = WorkerFigures(process, "worker", state="serving", concurrency=50)
    served = rng.sample(ROUTES, 2)
    for route in served:
        counts = figures.route(route)
        counts.served, counts.in_flight = rng.randint(0, 10_000), rng.randint(0, 50)
        if isinstance(figures, WorkerFigures):
            registry = keys.registry(route)
            await _run(topology, registry, [("SADD", registry, process)])
    card, directory = keys.card(process), keys.directory()
    await _run(topology, card, [("SET", card, json.dumps(figures.card()), "PX", 600_000)])
    await _run(topology, directory, [("ZADD", directory, int(time.time() * 1000), process)])


async def _measure(servers: list[RedisServer], limit: int, top: int, calls: int
                   ) -> tuple[dict[str, tuple[int, float]], float, float, dict[str, object]]:
    topology = Topology(parse_hosts([server.url for server in servers]), 5.0)
    try:
        await collect(topology, PREFIX, top=top, scan_limit=limit)  # connections open, caches warm
        walls = []
        before, cpu = _stats(servers), _cpu(servers)
        for _ in range(calls):
            started = time.perf_counter()
            status = await collect(topology, PREFIX, top=top, scan_limit=limit)
            walls.append(time.perf_counter() - started)
        cpu = (_cpu(servers) - cpu) / calls
        after = _stats(servers)
    finally:
        await topology.close()
    used = {name: ((after[name][0] - before.get(name, (0, 0))[0]) // calls,
                   (after[name][1] - before.get(name, (0, 0))[1]) / calls / 1000)
            for name in after if name != "info" and after[name] != before.get(name)}
    return used, cpu * 1000, statistics.median(walls) * 1000, status["layer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer-keys", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--servers", type=int, default=1)
    args = parser.parse_args()
    servers = [RedisServer().start() for _ in range(args.servers)]
    try:
        async def fill() -> None:
            topology = Topology(parse_hosts([server.url for server in servers]), 5.0)
            try:
                await _fill(topology, args.layer_keys, args.processes)
            finally:
                await topology.close()

        asyncio.run(fill())
        total = sum(int(s.command("DBSIZE")[1:].split(b"\r\n")[0]) for s in servers)
        print(f"{args.servers} server(s), {total} keys ({args.layer_keys} of the layer), "
              f"{args.processes} processes, {len(ROUTES)} route keys")
        for limit, top in ((SCAN_LIMIT, 0), (SCAN_LIMIT, TOP), (2 * total, TOP)):
            used, cpu_ms, wall_ms, layer = asyncio.run(_measure(servers, limit, top,
                                                                args.calls))
            redis_ms = sum(ms for _, ms in used.values())
            print(f"\n--scan-limit {limit} --top {top}: {layer['scanned']} keys found, "
                  f"complete: {layer['complete']}")
            print(f"  commands per call: {sum(n for n, _ in used.values())}: " + ", ".join(
                f"{name} {n} ({ms:.2f} ms)" for name, (n, ms) in sorted(used.items())))
            print(f"  Redis time per call: {redis_ms:.2f} ms running the commands, {cpu_ms:.1f} ms "
                  f"of CPU in all (a status every second: {cpu_ms / 10:.1f}% of one core)")
            print(f"  wall time per call: {wall_ms:.1f} ms (median of {args.calls})")
    finally:
        for server in servers:
            server.cleanup()


if __name__ == "__main__":
    main()
