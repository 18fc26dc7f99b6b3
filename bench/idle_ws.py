"""Idle WebSockets through the edge: memory per connection, against uvicorn serving them directly.

    .venv/bin/python bench/idle_ws.py [--connections 10000] [--rounds 1] [--before CHECKOUT]

Three sets of processes, one after the other, each fresh: uvicorn serving the echo application
(``testproject.apps_server:echo``) directly; the path distributor under gunicorn's ``ASGIWorker``
(the edge) forwarding every connection over a private redis-server to a ``channels-distributed
worker`` running the same application; and with ``--before CHECKOUT`` the edge and worker of
another checkout (built in place: ``python setup.py build_ext --inplace`` there) on the same
Redis. This process is the client: ``--connections`` WebSockets opened with picows (a compiled
client, so the load costs little), each sending one small text message and reading its echo,
then left idle. The resident memory of every serving process (``VmRSS`` of
``/proc/<pid>/status``) and Redis's ``used_memory`` are read once a warm-up batch of connections
has come and gone, and again once the last echo arrived: the difference over the number of
connections is what one idle connection costs each of them. Printed: KiB per connection per
process, and the total of edge, worker and Redis as a ratio of uvicorn's. Nothing is asserted.

Every process needs a file descriptor per connection: this one raises its soft
``RLIMIT_NOFILE`` to the hard limit, which the servers it starts inherit (checked in their
``/proc/<pid>/limits``). The client's ports come from one loopback address; Linux gives each
destination the whole ephemeral range (``net.ipv4.ip_local_port_range``), far more than needed.
Needs nginx and wrk only because the servers are started by ``bench/distributed.py``'s
``run_with_servers()``, which checks for them.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.budget import children  # noqa: E402
from bench.distributed import run_with_servers, spawn, uvicorn  # noqa: E402
from channels_distributed.embedded import RedisServer, free_port  # noqa: E402

APP = "testproject.apps_server:echo"
MESSAGE = b'{"event": "hello"}'
UVICORN, OURS, BEFORE = "uvicorn (direct)", "edge -> worker", "before: edge -> worker"
WARMUP = 200  # connections opened and closed first: imports, allocator pools, Redis buffers
BATCH = 100  # handshakes in flight at once
SETTLE = 1.0  # seconds after the last echo before memory is read (late frees, pings)


class Servers:
    """The processes of one target, started fresh: names -> pids, and the URL to connect to."""

    def __init__(self, url: str, procs: list[subprocess.Popen[bytes]],
                 pids: Callable[[], dict[str, int]]) -> None:
        self.url, self.procs, self.pids = url, procs, pids

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def start_uvicorn(args: argparse.Namespace, redis: RedisServer) -> Servers:
    port = free_port()
    proc = uvicorn(APP, port, "--backlog", "4096")
    return Servers(f"ws://127.0.0.1:{port}/ws", [proc], lambda: {"uvicorn": proc.pid})


def start_edge(args: argparse.Namespace, redis: RedisServer, root: Path = ROOT,
               prefix: str = "bench") -> Servers:
    """gunicorn's ASGIWorker serving the path distributor, and one worker, both of ``root``."""
    port, room = free_port(), str(args.connections + 2 * WARMUP)
    gunicorn = spawn([sys.executable, "-m", "gunicorn", "bench.distributed:edge_app()",
                      "-k", "channels_distributed.gunicorn.ASGIWorker", "-w", "1",
                      "--worker-connections", room, "--backlog", "4096",
                      "-b", f"127.0.0.1:{port}", "--log-level", "warning"], root,
                     CD_REDIS_URL=redis.url, CD_PREFIX=prefix)
    worker = spawn([sys.executable, "-m", "channels_distributed.cli", "worker", "bench",
                    "--app", APP, "--url", redis.url, "--prefix", prefix,
                    "--concurrency", room, "--log-level", "error"], root)

    def pids() -> dict[str, int]:
        edges = children(gunicorn.pid)  # gunicorn's one worker process serves the connections
        if len(edges) != 1:
            raise RuntimeError(f"gunicorn has {len(edges)} worker processes, expected 1")
        return {"edge": edges[0], "worker": worker.pid}

    return Servers(f"ws://127.0.0.1:{port}/ws", [gunicorn, worker], pids)


# The client ------------------------------------------------------------------------------------

class _Client(WSListener):  # type: ignore[misc]
    """One connection: sends the message once connected, counts its echo, then stays idle."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, MESSAGE)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_bytes() == MESSAGE:
            self.tally.echoed()
        elif frame.msg_type == WSMsgType.CLOSE:
            self.tally.failed(f"closed by the server: {frame.get_close_code()}")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.tally.closing:
            self.tally.failed("disconnected")


class Tally:
    """Echoes received so far; ``done`` resolves when ``expected`` arrived or one failed."""

    def __init__(self, expected: int) -> None:
        self.expected, self.count, self.lost, self.closing = expected, 0, 0, False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def echoed(self) -> None:
        self.count += 1
        if self.count == self.expected and not self.done.done():
            self.done.set_result(None)

    def failed(self, why: str) -> None:
        self.lost += 1
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"a connection failed: {why}"))


async def open_idle(url: str, count: int, timeout: float = 300.0) -> tuple[list[WSTransport],
                                                                         Tally]:
    """``count`` connections, each once its echo arrived."""
    tally = Tally(count)
    transports: list[WSTransport] = []
    for start in range(0, count, BATCH):
        pairs = await asyncio.gather(*(
            ws_connect(lambda: _Client(tally), url, read_buffer_init_size=1024,
                       websocket_handshake_timeout=60)
            for _ in range(min(BATCH, count - start))))
        transports.extend(transport for transport, _ in pairs)
    await asyncio.wait_for(asyncio.shield(tally.done), timeout)
    return transports, tally


async def close_all(transports: list[WSTransport], tally: Tally) -> None:
    tally.closing = True
    for transport in transports:
        transport.disconnect()
    await asyncio.sleep(0)


async def wait_ready(url: str, servers: Servers, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for proc in servers.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            transports, tally = await open_idle(url, 1, timeout=5)
            await close_all(transports, tally)
            return
        except (OSError, RuntimeError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# Measuring -------------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError(f"no open files limit for {pid}")


def redis_used(redis: RedisServer) -> int:
    info = redis.command("INFO", "memory").decode()
    return int(info.split("used_memory:", 1)[1].split()[0])


async def measure(servers: Servers, redis: RedisServer, count: int) -> dict[str, float]:
    """KiB per idle connection of each process of ``servers``, and of Redis."""
    await wait_ready(servers.url, servers)
    pids = servers.pids()
    for name, pid in pids.items():
        if open_files_limit(pid) < count + WARMUP:
            raise RuntimeError(f"{name} may open only {open_files_limit(pid)} files")
    warm, tally = await open_idle(servers.url, WARMUP)
    await close_all(warm, tally)
    await asyncio.sleep(SETTLE)
    before = {name: rss_kib(pid) for name, pid in pids.items()}
    redis_before = redis_used(redis)
    connections, tally = await open_idle(servers.url, count)
    await asyncio.sleep(SETTLE)
    if tally.lost or tally.count != count:
        raise RuntimeError(f"{tally.lost} connections failed while idle")
    after = {name: rss_kib(pid) for name, pid in pids.items()}
    result = {name: (after[name] - before[name]) / count for name in pids}
    if "edge" in pids:
        result["redis"] = (redis_used(redis) - redis_before) / 1024 / count
    await close_all(connections, tally)
    return result


def raise_open_files(need: int) -> int:
    """The soft RLIMIT_NOFILE raised to the hard limit (inherited by every process started)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"RLIMIT_NOFILE's hard limit is {hard}; {need} descriptors are needed: raise it "
                 "(ulimit -Hn, as root) or pass a smaller --connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per target, interleaved; medians are reported")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout, built in place: its edge and worker too")
    args = parser.parse_args()
    raise_open_files(args.connections + 2 * WARMUP + 100)
    return run_with_servers(lambda *a: asyncio.run(_run(*a)), args)


async def _run(args: argparse.Namespace, redis: RedisServer, workdir: Path,
               procs: list[subprocess.Popen[bytes]]) -> int:
    targets: dict[str, Callable[[], Servers]] = {
        UVICORN: lambda: start_uvicorn(args, redis),
        OURS: lambda: start_edge(args, redis),
    }
    if args.before is not None:
        targets[BEFORE] = lambda: start_edge(args, redis, args.before, prefix="before")
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for name, start in targets.items():
            servers = start()
            procs.extend(servers.procs)  # stopped by run_with_servers() if this fails
            try:
                result = await measure(servers, redis, args.connections)
            finally:
                servers.stop()
            print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items())
                  + " KiB/connection", file=sys.stderr, flush=True)
            runs.setdefault(name, []).append(result)
    _report(runs, args)
    return 0


def _report(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    medians = {name: {part: statistics.median(r[part] for r in results) for part in results[0]}
               for name, results in runs.items()}
    peer = medians[UVICORN]["uvicorn"]
    print(f"\n{'target':<24}{'edge':>9}{'worker':>9}{'redis':>9}{'total':>9}{'/ uvicorn':>11}"
          "   (KiB per idle connection)")
    print(f"{UVICORN:<24}{'':>27}{peer:>9.1f}{1:>10.2f}x")
    for name in (OURS, BEFORE):
        if name not in medians:
            continue
        parts = medians[name]
        total = parts["edge"] + parts["worker"] + parts["redis"]
        print(f"{name:<24}{parts['edge']:>9.1f}{parts['worker']:>9.1f}{parts['redis']:>9.3f}"
              f"{total:>9.1f}{total / peer:>10.2f}x")
    print(f"({args.connections} idle WebSockets per target, each after one echoed "
          f"{len(MESSAGE)}-byte message; RSS and Redis used_memory deltas; medians of "
          f"{args.rounds} interleaved rounds)")


if __name__ == "__main__":
    sys.exit(main())
