"""Memory per idle WebSocket connection: the gunicorn ASGIWorker against uvicorn, in one run.

    .venv/bin/python bench/ws_memory.py [--connections 400] [--rounds 3]

Each server runs the same echo application (``testproject.apps_server:echo``) in one process:
ours as one ``ASGIWorker`` under a gunicorn master, uvicorn as ``python -m uvicorn`` (its default
WebSocket implementation). This process opens ``--connections`` WebSocket connections with the
``websockets`` client, whose permessage-deflate offer is a browser's
(``permessage-deflate; client_max_window_bits``); each sends one 2 KB text message and reads
the echo, so that both sides' compressors have run; then the connections stay open, idle. The
serving process's RSS (``/proc/<pid>/status``) is read before the first connection and once the
last echo arrived: the difference over the number of connections is the memory one idle
connection costs. Measured with permessage-deflate negotiated and with it off (the client
offers nothing), in interleaved rounds; medians are printed, with each server's figure as a
ratio of uvicorn's and the extension parameters each server answered. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server import stop_group  # noqa: E402  (bench/server.py: bench/ is sys.path[0] here)

from channels_distributed.embedded import free_port  # noqa: E402

BIN = Path(sys.executable).parent
APP = "testproject.apps_server:echo"
OURS = "ours (ASGIWorker)"
UVICORN = "uvicorn"
ITEMS = ", ".join(f'{{"id": {i}, "name": "item {i}"}}' for i in range(80))
MESSAGE = f'{{"event": "update", "items": [{ITEMS}]}}'  # JSON, as applications send

SERVERS: dict[str, Callable[[int], list[str]]] = {
    OURS: lambda port: [
        str(BIN / "gunicorn"), APP, "--workers", "1", "--log-level", "warning",
        "--worker-class", "channels_distributed.gunicorn.ASGIWorker",
        "--bind", f"127.0.0.1:{port}",
    ],
    UVICORN: lambda port: [
        sys.executable, "-m", "uvicorn", APP, "--log-level", "warning",
        "--host", "127.0.0.1", "--port", str(port),
    ],
}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def serving_pid(server: str, proc: subprocess.Popen[bytes]) -> int:
    """The process that holds the connections: gunicorn's worker, or uvicorn itself."""
    if server != OURS:
        return proc.pid
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        if out.stdout.split():
            return int(out.stdout.split()[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


async def open_connections(
    port: int, count: int, deflate: bool
) -> tuple[list[ClientConnection], str]:
    url = f"ws://127.0.0.1:{port}/ws"
    compression = "deflate" if deflate else None
    connections: list[ClientConnection] = []
    for start in range(0, count, 50):  # in batches: within the server's listen backlog
        batch = await asyncio.gather(*(
            connect(url, compression=compression, max_queue=4, ping_interval=None)
            for _ in range(start, min(count, start + 50))
        ))
        connections += batch
    await asyncio.gather(*(_echo(ws) for ws in connections))
    extensions = connections[0].response.headers.get("Sec-WebSocket-Extensions", "(none)")
    return connections, extensions


async def _echo(ws: ClientConnection) -> None:
    await ws.send(MESSAGE)
    if await ws.recv() != MESSAGE:
        raise RuntimeError("the echo differs from the message")


async def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await _echo(ws)
                return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start (exit code {proc.poll()})")


async def measure(server: str, count: int, deflate: bool) -> tuple[float, str]:
    """KiB of the serving process's RSS per idle connection, and the negotiated extension."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(SERVERS[server](port), cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_ready(port, proc)
        pid = serving_pid(server, proc)
        # Warm-up: the first connections import modules and grow the allocator's pools.
        warm, _ = await open_connections(port, 50, deflate)
        await asyncio.gather(*(ws.close() for ws in warm))
        await asyncio.sleep(0.5)
        before = rss_kib(pid)
        connections, extensions = await open_connections(port, count, deflate)
        await asyncio.sleep(0.5)
        after = rss_kib(pid)
        await asyncio.gather(*(ws.close() for ws in connections))
        return (after - before) / count, extensions
    finally:
        stop_group(proc)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per server and mode, interleaved; the median is reported")
    args = parser.parse_args()
    runs: dict[tuple[str, bool], list[float]] = {}
    offers: dict[tuple[str, bool], str] = {}
    for _ in range(args.rounds):
        for deflate in (True, False):
            for server in SERVERS:
                kib, extensions = await measure(server, args.connections, deflate)
                print(f"  {server}, deflate {deflate}: {kib:.1f} KiB/connection ({extensions})",
                      file=sys.stderr, flush=True)
                runs.setdefault((server, deflate), []).append(kib)
                offers[(server, deflate)] = extensions
    print(f"\n{'server':<20} {'deflate':<8} {'KiB/conn':>9} {'/ uvicorn':>10}  extension answered")
    for deflate in (True, False):
        peer = statistics.median(runs[(UVICORN, deflate)])
        for server in SERVERS:
            kib = statistics.median(runs[(server, deflate)])
            print(f"{server:<20} {'on' if deflate else 'off':<8} {kib:>9.1f} "
                  f"{kib / peer:>9.2f}x  {offers[(server, deflate)]}")
    print(f"(RSS delta over {args.connections} idle connections, each after one echoed "
          f"{len(MESSAGE)}-byte message; medians of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    asyncio.run(main())
