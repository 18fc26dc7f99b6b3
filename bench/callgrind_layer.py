"""Instructions per message in the channel layer, counted by callgrind (stable on a loaded machine).

    .venv/bin/python bench/callgrind_layer.py [--scenario send|group|both] [--rounds 3]

One process runs under ``valgrind --tool=callgrind`` on the stock asyncio loop (as
``bench/layer.py`` does), against a private redis-server running natively. Scenarios, each one
step at a time:

* ``send``: ``send()`` to a channel from ``new_channel()``, then ``receive()`` it: one message.
  Every run does the same work: runs repeat within 0.2% (``bench/compile_gains.py`` uses it);
* ``group``: ``group_send()`` to a group of 100 channels spread over 4 layer instances, then
  every member ``receive()``: 100 deliveries, counted per delivery. How many deliveries one
  read of a local list brings depends on timing, so runs spread by about 15%: compare medians.

Each scenario runs with ``--small`` and ``--large`` steps: the difference of the two totals over
the difference of the counts is the cost of one message (or delivery), without start-up.
Printed: the median over ``--rounds``. ``CHANNELS_DISTRIBUTED_NO_EXTENSIONS`` and ``PYTHONPATH``
are passed on (``bench/sources.py`` runs it with a set of modules from their sources). Needs
valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from callgrind_distributed import ROOT, callgrind, total_instructions

from channels_distributed.embedded import RedisServer

MEMBERS, INSTANCES = 100, 4
PAYLOAD = {"type": "chat.message", "text": "hello", "n": 1}


async def send_steps(url: str, steps: int) -> None:
    from channels_distributed.layer import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], prefix="cgl")
    try:
        channel = await layer.new_channel()
        for _ in range(steps):
            await layer.send(channel, PAYLOAD)
            await layer.receive(channel)
    finally:
        await layer.close()


async def group_steps(url: str, steps: int) -> None:
    from channels_distributed.layer import RedisChannelLayer

    layers = [RedisChannelLayer(hosts=[url], prefix="cgl") for _ in range(INSTANCES)]
    try:
        members = []
        for i in range(MEMBERS):
            layer = layers[i % INSTANCES]
            channel = await layer.new_channel()
            await layer.group_add("cg-group", channel)
            members.append((layer, channel))
        for _ in range(steps):
            await layers[0].group_send("cg-group", PAYLOAD)
            await asyncio.gather(*(layer.receive(channel) for layer, channel in members))
    finally:
        for layer in layers:
            await layer.close()


SCENARIOS = {"send": (send_steps, 1), "group": (group_steps, MEMBERS)}


def instructions(scenario: str, url: str, steps: int, out: Path) -> int:
    subprocess.run([*callgrind(out), sys.executable, str(Path(__file__).resolve()), "_run",
                    scenario, url, str(steps)], cwd=ROOT, check=True, timeout=3600,
                   env=dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join(
                       filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))))
    return total_instructions(out)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        run, _ = SCENARIOS[sys.argv[2]]
        asyncio.run(run(sys.argv[3], int(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=(*SCENARIOS, "both"), default="both")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scenarios = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    redis = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="cd-callgrind-") as tmp:
            for scenario in scenarios:
                per = SCENARIOS[scenario][1]
                small, large = (args.small, args.large) if per == 1 else (
                    max(args.small // 20, 2), max(args.large // 20, 4))
                figures = []
                for _ in range(args.rounds):
                    few = instructions(scenario, redis.url, small, Path(tmp) / "few.out")
                    many = instructions(scenario, redis.url, large, Path(tmp) / "many.out")
                    figures.append((many - few) / ((large - small) * per))
                shown = ", ".join(f"{f / 1000:.1f}k" for f in figures)
                unit = "message" if per == 1 else "delivery"
                print(f"{scenario}: {statistics.median(figures) / 1000:.1f}k instructions per "
                      f"{unit} (median of {shown})", flush=True)
    finally:
        redis.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
