"""The measurement behind bench/groups.py: one layer's group_send latency and fan-out, with its
members' layers in 4 receiving OS processes and this process as the sender.

Each receiving process (``fanout.py _receive``) makes 25 channels with ``new_channel()`` and
adds them to the group itself, as a consumer does, then receives on every one. For each
message all 25 members have, it prints ``ack <seq> <time>``; for the burst's last one, ``burst
<deliveries> <time>``, on the machine's monotonic clock, which every process shares.
``fanout.py _measure`` runs ``measure`` for bench/groups.py's ``--before`` (another checkout).
bench/callgrind_layer.py reuses the layers, the receiving side and the message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the working tree's package

OURS, PUBSUB, CORE, NATS = ("channels_distributed", "channels_redis pubsub",
                            "channels_redis core", "channels-nats")
LAYERS = (OURS, PUBSUB, CORE, NATS)
PROCESSES, MEMBERS_PER_PROCESS = 4, 25
CAPACITY = 1_000_000  # every layer that has a capacity: the burst must not be cut by it
GROUP = "bench-fanout"
TEXT = "x" * 200  # a ~230-byte message, as bench/layer.py's
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Sizes:
    latency: int
    burst: int
    warmup: int = 20


# Layers ---------------------------------------------------------------------------------------
def make_layer(name: str, redis_url: str, nats_url: str) -> Any:
    if name == OURS:
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


async def measure_in(tree: Path, redis_url: str, nats_url: str, sizes: Sizes,
                     servers: Sequence[int]) -> Result:
    """``measure`` of channels_distributed as ``tree`` (another checkout, with this file in its
    bench/) has it: run there, in a process of its own, with its own virtualenv."""
    python = tree / ".venv" / "bin" / "python"
    process = await asyncio.create_subprocess_exec(
        str(python if python.exists() else sys.executable), str(tree / "bench" / "fanout.py"),
        "_measure", redis_url, nats_url, json.dumps(dataclasses.asdict(sizes)),
        json.dumps(list(servers)), stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 4 * RUN_TIMEOUT)
    if process.returncode:
        raise RuntimeError(f"{tree}/bench/fanout.py exited with {process.returncode}")
    return Result(**json.loads(out.decode().splitlines()[-1]))


def main() -> int:
    if sys.argv[1:2] == ["_receive"]:
        asyncio.run(receive_side(*sys.argv[2:5]))
    elif sys.argv[1:2] == ["_measure"]:  # for another checkout's bench/groups.py --before
        redis_url, nats_url, sizes_json, pids_json = sys.argv[2:6]
        result = asyncio.run(measure(OURS, redis_url, nats_url,
                                     Sizes(**json.loads(sizes_json)), json.loads(pids_json)))
        print(json.dumps(dataclasses.asdict(result)))
    else:
        raise SystemExit("run by bench/groups.py and bench/callgrind_layer.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
