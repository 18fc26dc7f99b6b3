"""WebSocket echo: messages per second of the gunicorn ASGIWorker against its peers, in one run.

    .venv/bin/python bench/ws_echo.py [--duration 5] [--connections 50] [--rounds 3]
                                      [--before CHECKOUT]

Servers, one process each pinned to CPU 0 (``taskset``), all serving the testproject's echo
application (``testproject.apps_server:echo``): ours (``channels_distributed.gunicorn.ASGIWorker``,
one worker), gunicorn + ``uvicorn_worker.UvicornWorker``, and granian (``--interface asgi
--workers 1``). ``--before CHECKOUT`` adds the ASGIWorker of another checkout built in place, for
a before/after ratio from the same run. The load is picows, a client compiled with Cython, in a
process of its own pinned to CPU 1 (this script run with ``--client``): ``--connections``
WebSockets, each sending a 16-byte text message and sending the next when its echo arrives,
for ``--warmup`` then ``--duration`` seconds; the echoes of the second period are counted.
Rounds are interleaved (every server once, then again); printed: the median messages per second
of each server, ours over theirs with the spread of the rounds, and the server's CPU time per
message (user and system, from /proc) with theirs over ours. Needs the ``bench`` extra
(``pip install -e '.[bench]'``: picows, uvicorn-worker, granian) and ``taskset``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import server
from server import BEFORE, OURS, UVICORN, cpu_seconds, ratio_cells, ratios, serving

APP = "testproject.apps_server:echo"
PATH = "/ws/echo"
MESSAGE = b"0123456789abcdef"  # 16 bytes
Result = tuple[float, float, float]  # messages/s, server CPU us per message, client CPU share
GRANIAN = "granian"
CHOICES = (OURS, BEFORE, UVICORN, GRANIAN)
# granian with its WebSocket support on (bench/server.py turns it off for HTTP).
server.SERVERS[GRANIAN] = lambda app, port, folder: [
    str(server.BIN / "granian"), "--interface", "asgi", "--workers", "1",
    "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", app,
]


# -- the client (its own process, on CPU 1) ---------------------------------------------------


async def _load(port: int, connections: int, warmup: float, duration: float) -> None:
    """Runs the echo loops; prints ``start`` when counting starts, then the count."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    counted = [0]

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: WSTransport) -> None:
            transport.send(WSMsgType.TEXT, MESSAGE)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.TEXT:
                counted[0] += 1
                transport.send(WSMsgType.TEXT, MESSAGE)

    url = f"ws://127.0.0.1:{port}{PATH}"
    clients = [await ws_connect(Echo, url) for _ in range(connections)]
    await asyncio.sleep(warmup)
    counted[0] = 0
    print("start", flush=True)
    await asyncio.sleep(duration)
    print(counted[0], flush=True)
    for transport, _ in clients:
        transport.disconnect()


def client(port: int, connections: int, warmup: float, duration: float) -> None:
    import uvloop

    uvloop.run(_load(port, connections, warmup, duration))


# -- the bench --------------------------------------------------------------------------------


def run_one(name: str, args: argparse.Namespace) -> Result | None:
    with serving(name, APP, "/", args.before) as started:
        if started is None:
            return None
        proc, port = started
        command = ["taskset", "-c", "1", sys.executable, __file__, "--client", str(port),
                   "--connections", str(args.connections), "--warmup", str(args.warmup),
                   "--duration", str(args.duration)]
        load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out = load.stdout
            if out is None or out.readline().strip() != "start":
                print(f"  the client failed on {name}", file=sys.stderr)
                return None
            cpu, began = cpu_seconds(proc.pid), time.monotonic()
            client_cpu = cpu_seconds(load.pid)
            line = out.readline()
            elapsed, used = time.monotonic() - began, cpu_seconds(proc.pid) - cpu
            client_used = cpu_seconds(load.pid) - client_cpu
            load.wait(30)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait(5)
        if not line.strip().isdigit() or int(line) == 0:
            print(f"  no echo counted on {name}: {line!r}", file=sys.stderr)
            return None
        count = int(line)
        return count / elapsed, used / count * 1e6, client_used / elapsed


def print_table(runs: dict[str, list[Result | None]], args: argparse.Namespace) -> None:
    print(f"\n{'server':<24} {'msgs/s':>8} {'ours/this':>9} {'spread':>10} {'CPU us':>7} "
          f"{'this/ours':>9} {'spread':>10} {'client CPU':>10}")
    ours = runs.get(OURS, [])
    for name, results in runs.items():
        done = [r for r in results if r is not None]
        if not done:
            print(f"{name:<24} {'failed':>8}")
            continue
        rate = statistics.median(r[0] for r in done)
        cpu = statistics.median(r[1] for r in done)
        busy = statistics.median(r[2] for r in done)
        print(f"{name:<24} {rate:>8.0f}  {ratio_cells(ratios(ours, results, 0))} {cpu:>7.2f}  "
              f"{ratio_cells(ratios(ours, results, 1))} {busy:>9.0%}")
    print(f"(medians of {args.rounds} interleaved {args.duration} s runs, {args.connections} "
          "connections, 16-byte text messages echoed; ours/this: messages per second; "
          "this/ours: the server's CPU time per message; spread: lowest-highest of the rounds; "
          "client CPU: the share of its core the client used, near 100% when it limits the rate)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1, help="seconds of load not counted")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per server, interleaved; the median is reported")
    parser.add_argument("--server", action="append", choices=[c for c in CHOICES if c != BEFORE],
                        default=None, help="measure only this server (repeatable; default: all)")
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout built in place whose ASGIWorker is measured too")
    parser.add_argument("--client", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.connections, args.warmup, args.duration)
        return
    if shutil.which("taskset") is None:
        sys.exit("taskset is required: apt-get install -y util-linux")
    chosen = [name for name in CHOICES
              if (args.server is None or name in args.server or name == BEFORE)
              and (name != BEFORE or args.before is not None)]
    runs: dict[str, list[Result | None]] = {}
    for _ in range(args.rounds):
        for name in chosen:
            result = run_one(name, args)
            print(f"  measured {name}: {result}", file=sys.stderr, flush=True)
            runs.setdefault(name, []).append(result)
    print_table(runs, args)


if __name__ == "__main__":
    main()
