"""Instructions per message in the channel layer, counted by callgrind (stable on a loaded machine).

    .venv/bin/python bench/callgrind_layer.py [--scenario NAME|all] [--layer NAME] [--rounds 3]

One process runs under ``valgrind --tool=callgrind`` on the stock asyncio loop (as
``bench/layer.py`` does), against a private redis-server (and, for channels-nats, a private
nats-server) running natively. Scenarios, each one step at a time:

* ``send``: ``send()`` to a channel from ``new_channel()``, then ``receive()`` it: one message.
  Every run does the same work: runs repeat within 0.2% (``bench/compile_gains.py`` uses it);
* ``group``: ``group_send()`` to a group of 100 channels spread over 4 layer instances, then
  every member ``receive()``: 100 deliveries, counted per delivery, sender and receivers in the
  one measured process;
* ``group_send``: the sender alone, per ``group_send()`` call (each awaited), to a group of 100
  members received on by 4 native processes (``bench/fanout.py``'s receiving side);
* ``group_receive``: one receiving process alone (25 members of that group, one task receiving
  on each, as consumers do), per delivery; a native sender group_sends the next message once
  every member has the last (the measured process says so on its stdout), so each arrives on
  its own, as in ``bench/groups.py``'s latency phase.

``--layer`` picks the layer of ``group_send`` and ``group_receive``: ours (the default) or a
peer of ``bench/groups.py`` (``channels_redis pubsub``, ``channels-nats``...), to compare.
In ``group`` how many deliveries one read brings depends on timing, so its runs spread by
several percent: compare medians. Each scenario runs with ``--small`` and ``--large``
steps: the difference of the two totals over the difference of the counts is the cost of one
message (or delivery, or call), without start-up. Printed: the median over ``--rounds``.
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS`` and ``PYTHONPATH`` are passed on (``bench/sources.py``
runs it with a set of modules from their sources). Needs valgrind.
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

import fanout
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


async def group_send_steps(name: str, redis_url: str, nats_url: str, steps: int) -> None:
    layer = fanout.make_layer(name, redis_url, nats_url)
    try:
        for seq in range(steps):
            await layer.group_send(fanout.GROUP, fanout.message(seq, burst=True))
    finally:
        await fanout.close_layer(layer)


async def group_receive_steps(name: str, redis_url: str, nats_url: str, steps: int) -> None:
    layer = fanout.make_layer(name, redis_url, nats_url)
    members = []
    for _ in range(fanout.MEMBERS_PER_PROCESS):
        channel = await layer.new_channel()
        await layer.group_add(fanout.GROUP, channel)
        members.append(channel)
    pending = [fanout.MEMBERS_PER_PROCESS] * steps

    async def member(channel: str) -> None:
        for _ in range(steps):
            seq = (await layer.receive(channel))["seq"]
            pending[seq] -= 1
            if not pending[seq]:  # every member has it: the driver sends the next one
                sys.stdout.write("got\n")
                sys.stdout.flush()

    print("ready", flush=True)
    await asyncio.gather(*(member(channel) for channel in members))
    await fanout.close_layer(layer)


async def _drive(scenario: str, name: str, redis_url: str, nats_url: str, steps: int,
                 command: list[str], env: dict[str, str]) -> None:
    """Run ``command`` (the measured process) beside its native counterpart."""
    if scenario == "group_send":
        receivers = fanout.Receivers()
        await receivers.start(name, redis_url, nats_url)
        try:
            process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env)
            await asyncio.wait_for(process.wait(), 3600)
        finally:
            await receivers.stop()
    else:
        process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env,
                                                       stdout=asyncio.subprocess.PIPE)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 600)
        if line.strip() != b"ready":
            raise RuntimeError(f"the measured process said {line!r}, not ready")
        sender = fanout.make_layer(name, redis_url, nats_url)
        try:
            for seq in range(steps):
                await sender.group_send(fanout.GROUP, fanout.message(seq, burst=True))
                line = await asyncio.wait_for(process.stdout.readline(), 600)
                if line.strip() != b"got":
                    raise RuntimeError(f"the measured process said {line!r}, not got")
        finally:
            await fanout.close_layer(sender)
        await asyncio.wait_for(process.wait(), 600)
    if process.returncode:
        raise RuntimeError(f"the measured process exited with {process.returncode}")


SCENARIOS = {"send": 1, "group": MEMBERS, "group_send": 1,
             "group_receive": fanout.MEMBERS_PER_PROCESS}
PAIRED = ("group_send", "group_receive")  # measured beside a native counterpart


def instructions(scenario: str, layer: str, urls: tuple[str, str], steps: int,
                 out: Path) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join(
        filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    command = [*callgrind(out), sys.executable, str(Path(__file__).resolve()), "_run",
               scenario, layer, *urls, str(steps)]
    if scenario in PAIRED:
        asyncio.run(_drive(scenario, layer, *urls, steps, command, env))
    else:
        subprocess.run(command, cwd=ROOT, check=True, timeout=3600, env=env)
    return total_instructions(out)


def _run_measured(scenario: str, layer: str, redis_url: str, nats_url: str, steps: int) -> None:
    if scenario == "send":
        asyncio.run(send_steps(redis_url, steps))
    elif scenario == "group":
        asyncio.run(group_steps(redis_url, steps))
    elif scenario == "group_send":
        asyncio.run(group_send_steps(layer, redis_url, nats_url, steps))
    else:
        asyncio.run(group_receive_steps(layer, redis_url, nats_url, steps))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        _run_measured(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=(*SCENARIOS, "both", "all"), default="both",
                        help="both: send and group (the default); all: every scenario")
    parser.add_argument("--layer", default=fanout.OURS,
                        help="the layer of group_send and group_receive: "
                             + ", ".join(fanout.LAYERS))
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scenarios = {"both": ["send", "group"], "all": list(SCENARIOS)}.get(
        args.scenario, [args.scenario])
    if args.layer != fanout.OURS and set(scenarios) - set(PAIRED):
        parser.error("--layer is for the group_send and group_receive scenarios")
    redis = RedisServer().start()
    nats = None
    if args.layer == fanout.NATS:
        from nats_server import NatsServer
        nats = NatsServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="cd-callgrind-") as tmp:
            for scenario in scenarios:
                per = SCENARIOS[scenario]
                small, large = (args.small, args.large) if scenario in ("send", "group_send") \
                    else (max(args.small // 20, 2), max(args.large // 20, 4))
                figures = []
                for _ in range(args.rounds):
                    urls = (redis.url, nats.url if nats else "")
                    counts = []
                    for steps in (small, large):
                        counts.append(instructions(scenario, args.layer, urls, steps,
                                                   Path(tmp) / "run.out"))
                        redis.command("FLUSHALL")  # no member of this run left for the next
                    figures.append((counts[1] - counts[0]) / ((large - small) * per))
                shown = ", ".join(f"{f / 1000:.1f}k" for f in figures)
                unit = {1: "message", MEMBERS: "delivery"}.get(per, "delivery")
                if scenario == "group_send":
                    unit = "group_send"
                who = f" ({args.layer})" if scenario in PAIRED else ""
                print(f"{scenario}{who}: {statistics.median(figures) / 1000:.1f}k instructions "
                      f"per {unit} (median of {shown})", flush=True)
    finally:
        redis.cleanup()
        if nats is not None:
            nats.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
