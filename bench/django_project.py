"""The test project's Django views through edge -> Redis -> ``manage.py runworker``, against the
same project served directly by uvicorn and by this package's gunicorn ASGIWorker.

    .venv/bin/python bench/django_project.py [--duration 5] [--connections 1 32] [--rounds 1]
                                             [--before CHECKOUT]

One run on a private redis-server: ``channels_distributed.demo.asgi:application`` (the project's
ASGI_APPLICATION, middleware and all) under (a) uvicorn, (b) gunicorn with the ASGIWorker, one
process each, and (c) the project distributed: the edge (``channels_distributed.demo.edge``:
``get_edge_application()``, under the ASGIWorker) and one ``manage.py runworker site`` worker.
Two pages: ``/hello/`` (a plain view) and ``/page/`` (a template rendered with a context
processor, the auth user and a loop). ``wrk`` measures each; printed: requests/s, p50 and p99 per
target, and the distributed project's ratios against each peer of the same run.
``--before CHECKOUT`` adds the edge and runworker of another checkout (built in place: ``python
setup.py build_ext --inplace``) to the same run, on its own key prefix of the same Redis.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.distributed import spawn, uvicorn, wait_ok, wrk  # noqa: E402
from channels_distributed.embedded import RedisServer, free_port  # noqa: E402

PAGES = {"hello view": "/hello/", "template page": "/page/"}
APP = "channels_distributed.demo.asgi:application"
EDGE_APP = "channels_distributed.demo.edge:application"
ASGI_WORKER = "channels_distributed.gunicorn.ASGIWorker"
OURS, BEFORE = "edge->redis->runworker", "before: edge->runworker"


def _start(redis: RedisServer, workdir: Path, procs: list[subprocess.Popen[bytes]],
           before: Path | None) -> dict[str, str]:
    """The deployments of the project; their base URLs."""
    env = {"CD_REDIS_URL": redis.url, "CD_PREFIX": "bench", "CD_DB": str(workdir / "db.sqlite3"),
           "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    direct, worker, edge = free_port(), free_port(), free_port()
    procs.append(uvicorn(APP, direct, **env))
    procs.append(spawn([sys.executable, "-m", "gunicorn", APP, "-k", ASGI_WORKER, "-w", "1",
                        "-b", f"127.0.0.1:{worker}", "--log-level", "warning"], **env))
    targets = {"uvicorn": f"http://127.0.0.1:{direct}",
               "ASGIWorker": f"http://127.0.0.1:{worker}",
               OURS: _distributed(edge, procs, ROOT, env)}
    if before is not None:
        port = free_port()
        _distributed(port, procs, before.resolve(), dict(env, CD_PREFIX="bench-before"))
        targets[BEFORE] = f"http://127.0.0.1:{port}"
    return targets


def _distributed(port: int, procs: list[subprocess.Popen[bytes]], root: Path,
                 env: dict[str, str]) -> str:
    """The project distributed, from the package of ``root``: its edge's base URL."""
    procs.append(spawn([sys.executable, "testproject/manage.py", "runworker", "site",
                        "--routes-only"], root, **env))
    procs.append(spawn([sys.executable, "-m", "gunicorn", EDGE_APP, "-k", ASGI_WORKER, "-w", "1",
                        "-b", f"127.0.0.1:{port}", "--log-level", "warning"], root, **env))
    return f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved runs per target; medians are reported")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT", default=None,
                        help="add this checkout's edge and runworker to the run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cd-bench-django-"))
    redis = RedisServer().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        targets = _start(redis, workdir, procs, args.before)
        for base in targets.values():
            for path in PAGES.values():
                wait_ok(base + path, timeout=60)
        _report(_measure(targets, args), args)
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
        redis.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


Results = dict[tuple[str, str, int], dict[str, float]]


def _measure(targets: dict[str, str], args: argparse.Namespace) -> Results:
    # Rounds interleave the targets, so a slow spell of the machine hits all of them alike.
    rounds: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for page, path in PAGES.items():
            for connections in args.connections:
                for name, base in targets.items():
                    wrk(base + path, connections, 1.0)  # warm up
                    result = wrk(base + path, connections, args.duration)
                    rounds.setdefault((page, name, connections), []).append(result)
    return {key: {field: statistics.median(r[field] for r in runs) for field in runs[0]}
            for key, runs in rounds.items()}


def _report(results: Results, args: argparse.Namespace) -> None:
    print(f"(medians of {args.rounds} interleaved {args.duration:g} s runs; one process per "
          "server, one runworker)")
    print(f"{'page':<15}{'target':<24}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}")
    for (page, name, connections), r in results.items():
        print(f"{page:<15}{name:<24}{connections:>6}{r['rps']:>10.0f}{r['p50']:>9.3f}"
              f"{r['p99']:>9.3f}{'yes' if r['errors'] else 'no':>8}")
    print("distributed vs each peer (req/s ratio; p50 and p99 ratios, above 1 is slower):")
    for page in PAGES:
        for connections in args.connections:
            ours = results[page, OURS, connections]
            for peer in ("uvicorn", "ASGIWorker", BEFORE):
                other = results.get((page, peer, connections))
                if other is None:
                    continue
                print(f"  {page:<15} c={connections:<4} vs {peer:<11} "
                      f"req/s {ours['rps'] / other['rps']:.2f}x, "
                      f"p50 {ours['p50'] / other['p50']:.2f}x, "
                      f"p99 {ours['p99'] / other['p99']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
