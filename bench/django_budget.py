"""Where a Django request's time goes: the project through edge -> Redis -> ``manage.py
runworker`` against the same project under uvicorn directly, per hop, in one run.

    .venv/bin/python bench/django_budget.py [--duration 5] [--connections 8] [--rounds 3]
                                            [--callgrind] [--small 40] [--large 240]
                                            [--before CHECKOUT] [--only hello|page]

The project is ``bench/django_project.py``'s (``channels_distributed.demo``: its middleware, the
``/hello/`` view and the ``/page/`` template page). Two measures, both of which hold still on a
loaded machine where requests per second do not:

* CPU per request of each process on the path (user and system time from ``/proc/<pid>/stat``
  over a wrk run, divided by the requests served): the edge (under gunicorn's ASGIWorker),
  redis-server and the worker, against uvicorn serving the project directly;
* with ``--callgrind``, instructions per request of the worker and of uvicorn, each run under
  ``valgrind --tool=callgrind`` (all its threads: Django's sync views run on asgiref's thread)
  serving ``--small`` then ``--large`` requests from a keep-alive client, one at a time; the
  difference of the totals over the difference of the counts leaves one request's cost.
  The edge, for the worker's count, runs natively.

Each measures the worker as ``runworker`` runs it, the same with ``--per-request-threads``
(Django's own thread per request: what ``channels_distributed/django/threads.py``'s pool saves),
and with ``--before CHECKOUT`` that checkout's edge and worker (built in place). ``--only hello``
or ``--only page`` measures one page. docs/performance.rst puts the figures together.

Needs ``wrk`` and, for ``--callgrind``, ``valgrind``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.budget import children, measure  # noqa: E402
from bench.callgrind_distributed import total_instructions  # noqa: E402
from bench.distributed import spawn, wait_ok  # noqa: E402
from bench.django_project import APP, ASGI_WORKER, EDGE_APP, PAGES  # noqa: E402
from channels_distributed.embedded import RedisServer, free_port  # noqa: E402


def _env(redis: RedisServer, workdir: Path) -> dict[str, str]:
    return {"CD_REDIS_URL": redis.url, "CD_PREFIX": "budget", "CD_DB": str(workdir / "db.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "testproject.settings", "PYTHONHASHSEED": "0"}


def _worker(env: dict[str, str], prefix: list[str], target: str) -> subprocess.Popen[bytes]:
    root, extra = WORKERS[target]
    return spawn([*prefix, sys.executable, "testproject/manage.py", "runworker", "site",
                  "--routes-only", *extra], root, **env)


def _edge(env: dict[str, str], port: int, target: str) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "gunicorn", EDGE_APP, "-k", ASGI_WORKER, "-w", "1",
                  "-b", f"127.0.0.1:{port}", "--log-level", "warning"], WORKERS[target][0], **env)


def _uvicorn(env: dict[str, str], port: int, prefix: list[str]) -> subprocess.Popen[bytes]:
    return spawn([*prefix, sys.executable, "-m", "uvicorn", APP, "--port", str(port),
                  "--log-level", "warning", "--no-access-log"], **env)


# The worker as runworker runs it, and with Django's own thread per request (``threads.py``'s
# pool off), and ``--before``'s (its edge and worker): on key prefixes of their own, each behind
# an edge of its own. Name -> (checkout, runworker's extra arguments).
WORKERS: dict[str, tuple[Path, tuple[str, ...]]] = {
    "worker": (ROOT, ()), "worker, thread per request": (ROOT, ("--per-request-threads",))}


def cpu_budget(args: argparse.Namespace, redis: RedisServer, workdir: Path,
               procs: list[subprocess.Popen[bytes]]) -> None:
    if redis.process is None:  # pragma: no cover - started by the caller
        raise RuntimeError("Redis is not running")
    env = _env(redis, workdir)
    direct = free_port()
    procs.append(_uvicorn(env, direct, []))
    paths: dict[str, tuple[str, dict[str, int]]] = {
        "uvicorn": (f"http://127.0.0.1:{direct}", {"uvicorn": procs[-1].pid})}
    for n, name in enumerate(WORKERS):
        mine, port = dict(env, CD_PREFIX=f"budget{n}"), free_port()
        worker, master = _worker(mine, [], name), _edge(mine, port, name)
        procs.extend([worker, master])
        paths[name] = (f"http://127.0.0.1:{port}", {"master": master.pid, name: worker.pid})
    for base, _ in paths.values():
        for path in PAGES.values():
            wait_ok(base + path, timeout=60)
    for _, pids in paths.values():
        if "master" in pids:
            (pids["edge"],) = children(pids.pop("master"))
            pids["redis-server"] = redis.process.pid
    print(f"CPU microseconds per request (user+system), c={args.connections}, medians of "
          f"{args.rounds} interleaved rounds of {args.duration:g} s, one run")
    for page, path in PAGES.items():
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, (base, pids) in paths.items():
                per, _done, _commands = measure(base + path, pids, args.connections,
                                                args.duration, None)
                rounds[name].append({hop: sum(v) for hop, v in per.items()})
        figures = {name: {hop: statistics.median(r[hop] for r in runs) for hop in runs[0]}
                   for name, runs in rounds.items()}
        for hops in figures.values():
            shown = ", ".join(f"{hop} {us:.0f}" for hop, us in hops.items())
            print(f"  {page:<14} {shown}; all {sum(hops.values()):.0f}")
        uvicorn_us = figures["uvicorn"]["uvicorn"]
        for name in WORKERS:
            print(f"    {name} / uvicorn: {figures[name][name] / uvicorn_us:.2f}x; "
                  f"edge+redis+worker / uvicorn: {sum(figures[name].values()) / uvicorn_us:.2f}x")


def _drive(port: int, path: str, requests: int) -> None:
    """``requests`` GETs of ``path``, one at a time on one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for _ in range(requests):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
    connection.close()


def _count(target: str, path: str, requests: int, redis: RedisServer, workdir: Path) -> int:
    env = _env(redis, workdir)
    out = workdir / f"{target.replace(' ', '')}-{path.strip('/')}-{requests}.out"
    grind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--quiet"]
    port = free_port()
    procs = []
    try:
        if target in WORKERS:
            measured = _worker(env, grind, target)
            procs = [measured, _edge(env, port, target)]
        else:
            measured = _uvicorn(env, port, grind)
            procs = [measured]
        wait_ok(f"http://127.0.0.1:{port}{path}", timeout=600)
        _drive(port, path, requests)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)  # drains, then exits: callgrind writes its total
            proc.wait(300)
    return total_instructions(out)


def instructions(args: argparse.Namespace, redis: RedisServer, workdir: Path) -> None:
    print(f"instructions per request (callgrind; {args.large} - {args.small} requests)")
    for page, path in PAGES.items():
        figures = {}
        for target in (*WORKERS, "uvicorn"):
            few = _count(target, path, args.small, redis, workdir)
            many = _count(target, path, args.large, redis, workdir)
            figures[target] = (many - few) / (args.large - args.small)
        shown = ", ".join(f"{name} {n / 1000:.0f}k" for name, n in figures.items())
        ratios = ", ".join(f"{name} / uvicorn {figures[name] / figures['uvicorn']:.2f}x"
                           for name in WORKERS)
        print(f"  {page}: {shown}; {ratios}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT", default=None,
                        help="add this checkout's edge and runworker (built in place)")
    parser.add_argument("--only", choices=("hello", "page"), default=None,
                        help="one page only")
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--large", type=int, default=240)
    args = parser.parse_args()
    if args.before is not None:
        WORKERS["before"] = (args.before.resolve(), ())
    if args.only is not None:
        for page, path in list(PAGES.items()):
            if args.only not in path:
                del PAGES[page]
    workdir = Path(tempfile.mkdtemp(prefix="cd-bench-django-budget-"))
    redis = RedisServer().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if args.callgrind:
            instructions(args, redis, workdir)
        else:
            cpu_budget(args, redis, workdir, procs)
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
        redis.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
