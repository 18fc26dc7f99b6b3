"""What waiting for a replica would cost a send: one layer send with and without ``WAIT 1 0``.

    .venv/bin/python bench/wait_cost.py [--sends 2000] [--rounds 5]

A Redis Cluster of three primaries with a replica each (``embedded.RedisCluster``, the suite's
binary) on free loopback ports; one channel layer on one event loop. Each send is awaited
before the next (latency, not throughput), then received, so the list stays short:

* ``send``: ``await layer.send(...)``, which returns when the primary has the message;
* ``send + WAIT``: the same push, then ``WAIT 1 0`` pipelined behind it on the same
  connection, awaited too: it returns when a replica acknowledged the write.

The two are measured in alternating rounds, so the machine's noise falls on both alike.
Printed: the median latency of each over every round, and their ratio. Replication here
crosses loopback only; between hosts, WAIT adds a network round trip to the replica on top.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the working tree's package

from channels_distributed.embedded import RedisCluster
from channels_distributed.layer import RedisChannelLayer

PAYLOAD = {"type": "bench.message", "text": "x" * 200}


async def _round(layer: RedisChannelLayer, channel: str, sends: int,
                 wait: bool) -> list[float]:
    key = layer.keys.channel(channel)
    writer = layer._state().writer_for(key)  # the connection the pushes go down
    took = []
    for _ in range(sends):
        started = time.perf_counter()
        sent = layer.send_soon(channel, PAYLOAD)
        if wait:
            await asyncio.sleep(0)  # the push is written in this turn; WAIT goes behind it
            link = writer.shard.connected_link
            if link is None:
                raise SystemExit("the writer's connection closed during the run")
            _, replicas = await asyncio.gather(sent, link.call("WAIT", 1, 0))
            if replicas < 1:
                raise SystemExit("no replica acknowledged a write: the run is void")
        else:
            await sent
        took.append(time.perf_counter() - started)
        await layer.receive(channel)
    return took


async def _measure(url: str, sends: int, rounds: int) -> dict[str, list[float]]:
    layer = RedisChannelLayer(hosts=[url], prefix="waitbench")
    results: dict[str, list[float]] = {"send": [], "send + WAIT 1 0": []}
    try:
        await _round(layer, "warm", 200, wait=False)
        await _round(layer, "warm", 200, wait=True)
        for _ in range(rounds):
            results["send"] += await _round(layer, "bench", sends, wait=False)
            results["send + WAIT 1 0"] += await _round(layer, "bench", sends, wait=True)
    finally:
        await layer.flush()
        await layer.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=2000, help="sends per round and kind")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with RedisCluster(3, replicas=1) as cluster:
        results = asyncio.run(_measure(cluster.url, args.sends, args.rounds))
    medians = {kind: statistics.median(took) for kind, took in results.items()}
    for kind, median in medians.items():
        print(f"{kind:<16} median {median * 1e6:7.0f} us over {len(results[kind])} sends")
    ratio = medians["send + WAIT 1 0"] / medians["send"]
    print(f"ratio: a send that waits for a replica takes {ratio:.2f}x as long")


if __name__ == "__main__":
    main()
