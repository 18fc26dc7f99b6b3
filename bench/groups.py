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
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the working tree's package

OURS, PUBSUB, CORE, NATS = ("channels_distributed", "channels_redis pubsub",
                            "channels_redis core", "channels-nats")
CLUSTER_ROW = "channels_distributed (cluster)"
BEFORE_ROW = "channels_distributed (before)"
LAYERS = (OURS, PUBSUB, CORE, NATS)
PROCESSES, MEMBERS_PER_PROCESS = 4, 25
CAPACITY = 1_000_000  # every layer that has a capacity: the burst must not be cut by it
GROUP = "bench-fanout"
TEXT = "x" * 200  # a ~230-byte message, as bench/layer.py's
RUN_TIMEOUT = 120.0
GOALS = ((PUBSUB, 1.5), (NATS, 1.2))


@dataclass(frozen=True)
class Sizes:
    latency: int
    burst: int
    warmup: int = 20


FULL = Sizes(latency=300, burst=1000)
QUICK = Sizes(latency=60, burst=200, warmup=5)
TINY = Sizes(latency=3, burst=5, warmup=1)


# Layers ---------------------------------------------------------------------------------------
def make_layer(name: str, redis_url: str, nats_url: str) -> Any:
    if name in (OURS, CLUSTER_ROW):
        from channels_distributed.layer import RedisChannelLayer
        return RedisChannelLayer(hosts=[redis_url], capacity=CAPACITY)
    if name == PUBSUB:
        from channels_redis.pubsub import RedisPubSubChannelLayer
        return RedisPubSubChannelLayer(hosts=[{"address": redis_url}])
    if name == CORE:
        from channels_redis.core import RedisChannelLayer as CoreLayer
        return CoreLayer(hosts=[{"address": redis_url, "max_connections": 1000}],
                         capacity=CAPACITY)
    if name == NATS:
        from channels_nats import NatsChannelLayer
        return NatsChannelLayer(servers=[nats_url], capacity=CAPACITY)
    raise SystemExit(f"unknown layer {name!r}; choose from {', '.join(LAYERS)}")


async def close_layer(layer: Any) -> None:
    # pubsub's flush() is what releases its connections; the others have close()/close_pools().
    closer = getattr(layer, "close_pools", None) or getattr(layer, "close", None)
    if type(layer).__name__ == "RedisPubSubChannelLayer":
        closer = layer.flush
    if closer is not None:
        await closer()


# A receiving process ---------------------------------------------------------------------------
async def receive_side(name: str, redis_url: str, nats_url: str) -> None:
    """Make 25 members, say ``ready``, then receive until stdin closes. For every message all
    25 members have, print ``ack <seq> <time>``; for the burst's last one, ``burst <count>
    <time>`` with the burst's deliveries so far."""
    layer = make_layer(name, redis_url, nats_url)
    members = []
    for _ in range(MEMBERS_PER_PROCESS):
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        members.append(channel)
    counts: dict[int, int] = defaultdict(int)
    burst = 0
    out = sys.stdout

    def got(message: dict[str, Any]) -> None:
        nonlocal burst
        seq = message["seq"]
        burst += message["burst"]
        counts[seq] += 1
        if counts[seq] == MEMBERS_PER_PROCESS:
            now = time.perf_counter()  # CLOCK_MONOTONIC: one clock for every process
            del counts[seq]
            if message["last"]:
                out.write(f"burst {burst} {now!r}\n")
                burst = 0
            elif not message["burst"]:
                out.write(f"ack {seq} {now!r}\n")
            out.flush()

    async def member(channel: str) -> None:
        while True:
            got(await layer.receive(channel))

    tasks = [asyncio.ensure_future(member(channel)) for channel in members]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stdin_closed.done() or (
        os.read(sys.stdin.fileno(), 4096) or stdin_closed.set_result(None)))
    await stdin_closed
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_layer(layer)


# The sender ------------------------------------------------------------------------------------
@dataclass
class Result:
    p50_ms: float | None = None
    p99_ms: float | None = None
    deliveries: float | None = None  # member deliveries per second in the burst
    #: CPU microseconds per delivery in the burst: the sender, the 4 receivers, the server(s)
    cpu: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Receivers:
    """The 4 receiving processes of one layer, and their lines."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []
        self.lines: asyncio.Queue[list[str]] = asyncio.Queue()
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self, name: str, redis_url: str, nats_url: str) -> None:
        for _ in range(PROCESSES):
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "_receive", name, redis_url,
                nats_url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            self.processes.append(process)
            self._pumps.append(asyncio.ensure_future(self._pump(process)))
        for _ in range(PROCESSES):
            await self.expect("ready")

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            await self.lines.put(line.decode().split())
        await self.lines.put(["exited", str(await process.wait())])

    async def expect(self, kind: str) -> list[str]:
        words = await asyncio.wait_for(self.lines.get(), RUN_TIMEOUT)
        if words[0] != kind:
            raise RuntimeError(f"a receiving process said {' '.join(words)!r}, "
                               f"not {kind!r}")
        return words

    async def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


def message(seq: int, burst: bool = False, last: bool = False) -> dict[str, Any]:
    return {"type": "bench.fanout", "seq": seq, "burst": int(burst), "last": last,
            "text": TEXT}


async def _acked(sender: Any, receivers: Receivers, seq: int) -> float:
    """Send one message; the seconds until its last member had it."""
    started = time.perf_counter()
    await sender.group_send(GROUP, message(seq))
    last = 0.0
    for _ in range(PROCESSES):
        words = await receivers.expect("ack")
        if int(words[1]) != seq:
            raise RuntimeError(f"acknowledged message {words[1]} while waiting for {seq}")
        last = max(last, float(words[2]))
    return last - started


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(receivers: Receivers, servers: list[int]) -> dict[str, float]:
    return {"sender": cpu_seconds(os.getpid()),
            "receivers": sum(cpu_seconds(p.pid) for p in receivers.processes),
            "server": sum(cpu_seconds(pid) for pid in servers)}


async def measure(name: str, redis_url: str, nats_url: str, sizes: Sizes,
                  servers: Sequence[int] = ()) -> Result:
    result = Result()
    receivers = Receivers()
    sender = make_layer(name, redis_url, nats_url)
    try:
        await receivers.start(name, redis_url, nats_url)
        for seq in range(sizes.warmup):
            await _acked(sender, receivers, seq)
        samples = sorted([await _acked(sender, receivers, sizes.warmup + i)
                          for i in range(sizes.latency)])
        result.p50_ms = statistics.median(samples) * 1e3
        result.p99_ms = samples[math.ceil(len(samples) * 0.99) - 1] * 1e3  # nearest rank
        first = sizes.warmup + sizes.latency
        cpu_before = cpu_by_role(receivers, list(servers))
        started = time.perf_counter()
        for i in range(sizes.burst):
            await sender.group_send(GROUP, message(first + i, True, i == sizes.burst - 1))
        got, last = 0, 0.0
        for _ in range(PROCESSES):
            words = await receivers.expect("burst")
            got, last = got + int(words[1]), max(last, float(words[2]))
        cpu_after = cpu_by_role(receivers, list(servers))
        expected = sizes.burst * PROCESSES * MEMBERS_PER_PROCESS
        result.deliveries = got / (last - started)
        result.cpu = {role: (cpu_after[role] - cpu_before[role]) * 1e6 / got
                      for role in cpu_after} if got else {}
        if got != expected:
            result.notes.append(f"lost {expected - got} of {expected} deliveries")
    finally:
        await close_layer(sender)
        await receivers.stop()
    return result


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


async def measure_in(tree: Path, redis_url: str, nats_url: str, sizes: Sizes,
                     servers: Sequence[int]) -> Result:
    """``measure`` of channels_distributed as ``tree`` (another checkout, with this bench file
    in its bench/) has it: run there, in a process of its own, with its own virtualenv."""
    python = tree / ".venv" / "bin" / "python"
    process = await asyncio.create_subprocess_exec(
        str(python if python.exists() else sys.executable), str(tree / "bench" / "groups.py"),
        "_measure", redis_url, nats_url, json.dumps(dataclasses.asdict(sizes)),
        json.dumps(list(servers)), stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 4 * RUN_TIMEOUT)
    if process.returncode:
        raise RuntimeError(f"{tree}/bench/groups.py exited with {process.returncode}")
    return Result(**json.loads(out.decode().splitlines()[-1]))


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
                    results[name] = await measure(name, url or "", servers.nats_url, sizes,
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
    if len(sys.argv) > 1 and sys.argv[1] == "_receive":
        asyncio.run(receive_side(*sys.argv[2:5]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":  # for another tree's --before
        redis_url, nats_url, sizes_json, pids_json = sys.argv[2:6]
        result = asyncio.run(measure(OURS, redis_url, nats_url,
                                     Sizes(**json.loads(sizes_json)), json.loads(pids_json)))
        print(json.dumps(dataclasses.asdict(result)))
        return 0
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
