"""Many short-lived process-local channels: memory and send cost as channels come and go.

    .venv/bin/python bench/churn.py [--channels 25000] [--sends 2000]

A server with many short WebSocket connections makes a new_channel() per connection, and a
message often reaches that channel before its first receive(). This runs one layer on one
default asyncio loop against a private redis-server (free loopback port, never :6379) and
prints, at the start and after each step of channels used once, the process's RSS and the
cost of a send to a process-local channel (the local list's reader lingers after a receive, popping
what arrives) and of a send-then-receive round trip. Before the fix each used channel left a
buffer behind and every pop scanned them all; the figures should stay flat. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the working tree's package

from channels_distributed.compiled import compiled_modules
from channels_distributed.embedded import RedisServer
from channels_distributed.layer import RedisChannelLayer

PAYLOAD = {"type": "bench.message", "text": "x" * 200}
BATCH = 100  # channels made, sent to, then received from, per step of the churn


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def send_cost(layer: RedisChannelLayer, probe: str, sends: int) -> tuple[float, float]:
    """Median microseconds of one send, and of one send + receive, on ``probe``."""
    send_samples, trip_samples = [], []
    for _ in range(sends):
        started = time.perf_counter()
        await layer.send(probe, PAYLOAD)
        sent = time.perf_counter()
        await layer.receive(probe)
        send_samples.append(sent - started)
        trip_samples.append(time.perf_counter() - started)
    return statistics.median(send_samples) * 1e6, statistics.median(trip_samples) * 1e6


async def use_once(layer: RedisChannelLayer, probe: str, count: int) -> None:
    """``count`` channels, each sent one message that reaches this process before its
    receive(): the round trip on ``probe`` (same local list, FIFO) makes sure it did."""
    for _ in range(0, count, BATCH):
        channels = [await layer.new_channel() for _ in range(BATCH)]
        for channel in channels:
            await layer.send(channel, PAYLOAD)
        await layer.send(probe, PAYLOAD)
        await layer.receive(probe)
        for channel in channels:
            await layer.receive(channel)


async def run(url: str, steps: list[int], sends: int) -> None:
    layer = RedisChannelLayer(hosts=[url], capacity=1000)
    probe = await layer.new_channel()
    await send_cost(layer, probe, 200)  # warm-up
    print(f"{'channels used':>14} {'RSS MiB':>8} {'send us':>8} {'round trip us':>14}")
    used = 0
    for step in [0, *steps]:
        await use_once(layer, probe, step)
        used += step
        send_us, trip_us = await send_cost(layer, probe, sends)
        print(f"{used:>14,} {rss_mib():>8.1f} {send_us:>8.0f} {trip_us:>14.0f}", flush=True)
    await layer.flush()
    await layer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--channels", type=int, default=25_000, help="channels used in all")
    parser.add_argument("--sends", type=int, default=2_000, help="sends per measurement")
    args = parser.parse_args()
    steps = [5_000] + [5_000] * max(0, (args.channels - 5_000) // 5_000)
    server = RedisServer().start()
    try:
        version = server.command("INFO", "server").decode().split("redis_version:")[1].split()[0]
        print(f"redis {version}; python {sys.version.split()[0]}; default asyncio loop; "
              f"compiled: {', '.join(m.rsplit('.', 1)[1] for m in compiled_modules()) or 'no'}")
        asyncio.run(run(server.url, steps, args.sends))
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
