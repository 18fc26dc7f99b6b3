"""Group fan-out across OS processes: channels_distributed vs channels_redis (pubsub, core) and
channels-nats, in one run.

    .venv/bin/python bench/groups.py [--rounds 3] [--quick] [--layers NAME,...] [--cluster]

One group of 100 members spread over 4 receiving OS processes (25 channels each, made by that
process's own layer instance from ``new_channel()`` and added to the group by it, as a consumer
does), and one sender: this process, with a layer instance of its own. Redis (a private
redis-server) and NATS (Debian's ``nats-server``) run on free loopback ports, started and stopped
here. Every layer gets the same message, capacity and steps; nothing is tuned per layer.

latency     the sender group_sends one message and waits until all 100 members have it,
            ``--latency`` times: p50/p99 of the time from the call to the last member's receive
            (each receiving process notes when its 25 members all have a message, on the
            machine's monotonic clock, which every process shares).
fan-out     the sender group_sends ``--burst`` messages one after another (each call awaited, as
            an application's loop does); member deliveries per second, from the first call to
            the last member's receive in any process. A layer that lost deliveries says so.

Rounds run every layer in turn (fresh processes and servers' keys each time); the ratios (ours /
peer) are printed per round and as the median with its spread. ``--cluster`` adds our layer on
a local Redis Cluster of three primaries (the peers cannot run on one). The goals are printed as
met or not; the harness is not tuned to them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fanout import (
    CORE,
    LAYERS,
    MEMBERS_PER_PROCESS,
    NATS,
    OURS,
    PROCESSES,
    PUBSUB,
    Result,
    Sizes,
    measure,
    measure_in,
)

HERE = Path(__file__).resolve().parent
CLUSTER_ROW = "channels_distributed (cluster)"
BEFORE_ROW = "channels_distributed (before)"
GOALS = ((PUBSUB, 1.5), (NATS, 1.2))

FULL = Sizes(latency=300, burst=1000)
QUICK = Sizes(latency=60, burst=200, warmup=5)
TINY = Sizes(latency=3, burst=5, warmup=1)


# The run ---------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratios(results: dict[str, Result], peer: str,
           ours: str = OURS) -> tuple[float | None, float | None]:
    """(fan-out ours/peer, p50 ours/peer)."""
    mine, base = results.get(ours), results.get(peer)
    if mine is None or base is None:
        return None, None
    fan = mine.deliveries / base.deliveries if mine.deliveries and base.deliveries else None
    p50 = mine.p50_ms / base.p50_ms if mine.p50_ms and base.p50_ms else None
    return fan, p50


def _ours(results: dict[str, Result]) -> list[str]:
    """The rows of channels_distributed: this tree's, and --before's when asked."""
    return [name for name in results if name in (OURS, BEFORE_ROW)]


def print_round(index: int, results: dict[str, Result]) -> None:
    print(f"\nround {index + 1}: {'layer':<32} {'p50 ms':>7} {'p99 ms':>7} {'deliv/s':>10}"
          "   CPU us per delivery: sender receivers server")
    for name, r in results.items():
        cpu = "".join(f" {_fmt(r.cpu.get(role)):>9}" for role in ("sender", "receivers",
                                                                   "server"))
        print(f"{'':9}{name:<32} {_fmt(r.p50_ms):>7} {_fmt(r.p99_ms):>7} "
              f"{_fmt(r.deliveries, 0):>10}{'':22}{cpu}"
              + "".join(f"  ({note})" for note in r.notes))
    for ours in _ours(results):
        who = "ours" if ours == OURS else "before"
        for peer in (PUBSUB, CORE, NATS):
            fan, p50 = ratios(results, peer, ours)
            if fan is not None or p50 is not None:
                print(f"{'':9}{who + ' / ' + peer:<32} fan-out {_fmt(fan)}x   p50 {_fmt(p50)}x")


def print_summary(rounds: list[dict[str, Result]]) -> None:
    print(f"\nover {len(rounds)} round(s): median [min-max] (fan-out: higher is better; "
          "p50: lower is better)")
    goals = dict(GOALS)
    for ours in _ours(rounds[0]) if rounds else []:
        who = "ours" if ours == OURS else "before"
        for peer in (PUBSUB, CORE, NATS):
            pairs = [ratios(results, peer, ours) for results in rounds]
            fans = [f for f, _ in pairs if f is not None]
            p50s = [p for _, p in pairs if p is not None]
            if not fans:
                continue
            line = (f"  {who + ' / ' + peer:<32} fan-out {statistics.median(fans):.2f}x "
                    f"[{min(fans):.2f}-{max(fans):.2f}]")
            if p50s:
                line += (f"   p50 {statistics.median(p50s):.2f}x "
                         f"[{min(p50s):.2f}-{max(p50s):.2f}]")
            if peer in goals and ours == OURS:
                met = statistics.median(fans) >= goals[peer]
                line += f"   goal fan-out >= {goals[peer]}x: {'MET' if met else 'NOT MET'}"
            print(line)


@dataclass(frozen=True)
class Servers:
    redis_url: str
    nats_url: str
    cluster_url: str | None
    #: each layer's server processes, whose CPU time is counted
    pids: dict[str, list[int]]
    flush: Callable[[], None]
    before: Path | None = None  # another checkout, whose channels_distributed is also measured


async def run(names: list[str], servers: Servers, sizes: Sizes,
              rounds: int) -> list[dict[str, Result]]:
    every = []
    for index in range(rounds):
        results: dict[str, Result] = {}
        for name in names:
            url = servers.cluster_url if name == CLUSTER_ROW else servers.redis_url
            started = time.perf_counter()
            try:
                if name == BEFORE_ROW:
                    results[name] = await measure_in(servers.before or HERE.parent,
                                                     servers.redis_url, servers.nats_url,
                                                     sizes, servers.pids.get(OURS, []))
                else:
                    layer = OURS if name == CLUSTER_ROW else name
                    results[name] = await measure(layer, url or "", servers.nats_url, sizes,
                                                  servers.pids.get(name, []))
            except Exception as exc:  # one layer failing must not hide the others
                results[name] = Result(notes=[f"{type(exc).__name__}: {exc}"[:160]])
            servers.flush()
            print(f"  round {index + 1} {name:<32} {time.perf_counter() - started:5.1f} s",
                  flush=True)
        print_round(index, results)
        every.append(results)
    return every


def main() -> int:
    from nats_server import NatsServer

    from channels_distributed.embedded import RedisCluster, RedisServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--tiny", action="store_true", help="a few messages: the bench's test")
    parser.add_argument("--layers", default=",".join(LAYERS),
                        help=f"comma-separated, from: {', '.join(LAYERS)}")
    parser.add_argument("--cluster", action="store_true",
                        help="also run ours on a local Redis Cluster of three primaries")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also run channels_distributed as another checkout has it (its "
                             ".venv, this file copied to its bench/): before/after in one run")
    args = parser.parse_args()
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    rounds = 1 if args.tiny or args.quick else args.rounds
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    for name in names:
        if name not in LAYERS:
            parser.error(f"unknown layer {name!r}; choose from {', '.join(LAYERS)}")
    if args.cluster:
        names.insert(1, CLUSTER_ROW)
    if args.before is not None:
        names.insert(1, BEFORE_ROW)
    redis = RedisServer().start()
    cluster = RedisCluster(3).start() if args.cluster else None
    nats = NatsServer().start() if NATS in names else None

    def flush() -> None:
        redis.command("FLUSHALL")
        for node in cluster.primaries if cluster is not None else ():
            node.command("FLUSHALL")

    try:
        version = redis.command("INFO", "server").decode().split("redis_version:")[1].split()[0]
        print(f"redis {version}; {nats.version() if nats else 'no nats-server'}; python "
              f"{sys.version.split()[0]}; default asyncio loop; {PROCESSES} receiving processes "
              f"x {MEMBERS_PER_PROCESS} members; {sizes}", flush=True)
        redis_pids = [redis.process.pid] if redis.process else []
        cluster_pids = [n.process.pid for n in cluster.primaries if n.process] if cluster else []
        pids = {name: redis_pids for name in (OURS, PUBSUB, CORE)}
        pids.update({CLUSTER_ROW: cluster_pids,
                     NATS: [nats.process.pid] if nats and nats.process else []})
        servers = Servers(redis.url, nats.url if nats else "", cluster.url if cluster else None,
                          pids, flush, args.before)
        every = asyncio.run(run(names, servers, sizes, rounds))
    finally:
        redis.cleanup()
        if cluster is not None:
            cluster.cleanup()
        if nats is not None:
            nats.cleanup()
    print_summary(every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
