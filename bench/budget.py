"""Where a distributed request's time goes: CPU per request of each hop, in one run.

    .venv/bin/python bench/budget.py [--duration 5] [--connections 64]

The distributed hello path (wrk -> edge under gunicorn's ASGIWorker -> Redis -> a
``channels-distributed worker``), and beside it nginx -> uvicorn serving the same app, are loaded
with wrk in turn. For every process on the path the CPU time it spent during the measured run
(user and system, from ``/proc/<pid>/stat``; system time is the kernel's work for it: sockets,
wake-ups) is divided by the requests served: microseconds of CPU per request, per hop. Redis's
own figures (``INFO commandstats``: microseconds per call of each command) say which commands cost
what inside Redis. Printed: the table per hop for both paths, and the ratio of their totals, the
figure that bounds the throughput ratio on a machine whose cores all of them share.

Instructions per request in the edge and in the worker come from
``bench/callgrind_distributed.py``; docs/performance.rst puts both together.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.distributed import (  # noqa: E402
    APP,
    NGINX_CONF,
    edge,
    run_with_servers,
    spawn,
    uvicorn,
    wait_ok,
    worker,
    wrk,
)
from channels_distributed.embedded import RedisServer, free_port  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def children(pid: int) -> list[int]:
    """The pids of the direct children of ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def commandstats(redis: RedisServer) -> dict[str, tuple[int, float]]:
    """command -> (calls, total microseconds) so far."""
    info = redis.command("INFO", "commandstats").decode()
    return {name: (int(calls), float(usec)) for name, calls, usec in
            re.findall(r"cmdstat_(\w+):calls=(\d+),usec=(\d+)", info)}


def measure(url: str, pids: dict[str, int], connections: int, duration: float,
            redis: RedisServer | None) -> tuple[dict[str, tuple[float, float]], int,
                                                dict[str, tuple[float, float]]]:
    """CPU microseconds (user, system) per request of each named process, the requests, and
    per Redis command (calls per request, microseconds per request)."""
    wrk(url, connections, 1.0)  # warm up
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    stats = commandstats(redis) if redis else {}
    result = wrk(url, connections, duration)
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    done = int(result["requests"])
    per = {name: ((after[name][0] - before[name][0]) * 1e6 / done,
                  (after[name][1] - before[name][1]) * 1e6 / done) for name in pids}
    commands = {}
    if redis:
        later = commandstats(redis)
        for name, (calls, usec) in later.items():
            was_calls, was_usec = stats.get(name, (0, 0.0))
            if calls - was_calls and name != "info":
                commands[name] = ((calls - was_calls) / done, (usec - was_usec) / done)
    return per, done, commands


def _print(title: str, per: dict[str, tuple[float, float]], done: int) -> float:
    print(f"{title} ({done} requests)")
    print(f"  {'process':<28}{'user us/req':>12}{'system us/req':>15}{'total':>9}")
    total = 0.0
    for name, (user, system) in per.items():
        total += user + system
        print(f"  {name:<28}{user:>12.1f}{system:>15.1f}{user + system:>9.1f}")
    print(f"  {'all':<28}{'':>12}{'':>15}{total:>9.1f}")
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    return run_with_servers(_run, args)


def _run(args: argparse.Namespace, redis: RedisServer, workdir: Path,
         procs: list[subprocess.Popen[bytes]]) -> int:
    direct, nginx_port, edge_port = free_port(), free_port(), free_port()
    app = uvicorn(APP, direct)
    (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, upstream=direct,
                                                          port=nginx_port))
    nginx = spawn(["nginx", "-c", str(workdir / "nginx.conf"), "-p", str(workdir),
                   "-g", "daemon off;"])
    master = edge(edge_port, [redis.url])
    served = worker([redis.url])
    procs.extend([app, nginx, master, served])
    ours_url, theirs_url = f"http://127.0.0.1:{edge_port}/", f"http://127.0.0.1:{nginx_port}/"
    wait_ok(ours_url)
    wait_ok(theirs_url)
    (edge_pid,) = children(master.pid)
    nginx_workers = children(nginx.pid)
    if redis.process is None:  # pragma: no cover - started above
        raise RuntimeError("Redis is not running")
    ours, done, commands = measure(
        ours_url, {"edge (ASGIWorker+distributor)": edge_pid, "redis-server": redis.process.pid,
                   "worker": served.pid}, args.connections, args.duration, redis)
    theirs, their_done, _ = measure(
        theirs_url, {"nginx worker": nginx_workers[0], "uvicorn": app.pid},
        args.connections, args.duration, None)
    print(f"CPU per request at c={args.connections}, {args.duration:g} s each, same run")
    total = _print("edge -> redis -> worker", ours, done)
    print("  inside Redis, per request:")
    for name, (calls, usec) in sorted(commands.items(), key=lambda item: -item[1][1]):
        print(f"    {name:<24}{calls:>8.2f} calls{usec:>9.2f} us")
    their_total = _print("nginx -> uvicorn", theirs, their_done)
    print(f"CPU per request, ours / theirs: {total / their_total:.2f}x "
          f"(throughput ratio bound where every process shares the same cores: "
          f"{their_total / total:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
