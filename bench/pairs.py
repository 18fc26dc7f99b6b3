"""The layer load the layer benches share: producer/consumer pairs, one per channel, sending the
same ~230-byte message (bench/layer.py's throughput scenario, bench/scale.py's layer rows)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["CAPACITY", "PAYLOAD", "run_pairs"]

# channels_redis core keeps every process-local channel of an instance in ONE sorted set and
# checks capacity against it, so the default capacity (100) would raise ChannelFull as soon as 100
# producers run at once. The same generous capacity is given to every layer that has one.
CAPACITY = 1_000_000
PAYLOAD = {"type": "bench.message", "text": "x" * 200}  # the same ~230-byte message for all


async def run_pairs(layer: Any, channels: list[str], per_producer: int) -> float:
    """Run one producer/consumer pair per channel to completion; returns the elapsed seconds."""
    async def produce(channel: str) -> None:
        for _ in range(per_producer):
            await layer.send(channel, PAYLOAD)

    async def consume(channel: str) -> None:
        for _ in range(per_producer):
            await layer.receive(channel)

    started = time.perf_counter()
    await asyncio.gather(*(produce(c) for c in channels), *(consume(c) for c in channels))
    return time.perf_counter() - started
