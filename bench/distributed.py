"""Hello world through edge -> Redis -> one worker, against direct uvicorn and nginx -> uvicorn.

    .venv/bin/python bench/distributed.py [--duration 5] [--low 1] [--high 64] [--rounds 3]
                                          [--before CHECKOUT]

Everything runs in one go on a private redis-server: the same ASGI app
(``testproject.workers:hello``) served (a) by uvicorn directly, (b) by uvicorn behind nginx with
upstream keepalive, (c) by a ``channels-distributed worker`` behind uvicorn running the path
distributor. ``wrk`` measures each at low and high concurrency. Printed: throughput ratios, p50 and
p99 latency, the p50 latency the distributor adds at low load, and Redis commands per request
(``total_commands_processed``, i.e. commands sent by clients; commands run inside scripts are not
counted there, ``commandstats`` counts them and is printed as well).

``--before CHECKOUT`` adds the edge and worker of another checkout (built in place: ``python
setup.py build_ext --inplace`` there), on the same Redis under a prefix of their own, so a change
is measured against what it changes in the same run.

Needs ``nginx`` and ``wrk`` (Debian: ``apt-get install -y nginx wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels_distributed.embedded import RedisServer, free_port  # noqa: E402

APP = "testproject.workers:hello"
NGINX_CONF = """
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def edge_app() -> object:
    """``uvicorn --factory bench.distributed:edge_app``: every path to the key ``bench``, on the
    servers ``CD_REDIS_URL`` names (several separated by spaces: shards); ``CD_SPREAD=bench=3``
    spreads the key over 3 sub-queues (the distributor's ``spread`` setting)."""
    from channels_distributed.conf.hosts import split_urls
    from channels_distributed.distributor import create_path_distributor

    options: dict[str, object] = {}
    if os.environ.get("CD_SPREAD"):
        key, _, count = os.environ["CD_SPREAD"].partition("=")
        options["spread"] = {key: int(count)}
    return create_path_distributor(hosts=split_urls(os.environ["CD_REDIS_URL"], "CD_REDIS_URL"),
                                   prefix=os.environ.get("CD_PREFIX", "bench"),
                                   routes={"/": "bench"}, **options)


def spawn(args: list[str], root: Path = ROOT, **env: str) -> subprocess.Popen[bytes]:
    """A process running the package of ``root`` (this checkout, or ``--before``'s)."""
    path = os.pathsep.join([str(root), str(ROOT)])  # bench.distributed comes from here
    return subprocess.Popen(args, cwd=root, env=dict(os.environ, PYTHONPATH=path, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edge(port: int, urls: list[str], root: Path = ROOT, app: str = "bench.distributed:edge_app()",
         processes: int = 1, **env: str) -> subprocess.Popen[bytes]:
    """The distributor under gunicorn with the package's ASGIWorker (the recommended edge), on
    ``urls``, with ``processes`` worker processes: the master's children."""
    return spawn([sys.executable, "-m", "gunicorn", app,
                  "-k", "channels_distributed.gunicorn.ASGIWorker", "-w", str(processes),
                  "-b", f"127.0.0.1:{port}", "--log-level", "warning"], root,
                 CD_REDIS_URL=" ".join(urls), **env)


def worker(urls: list[str], prefix: str = "bench", root: Path = ROOT,
           keys: tuple[str, ...] = ("bench",)) -> subprocess.Popen[bytes]:
    """A ``channels-distributed worker`` serving the hello app on ``keys``."""
    return spawn([sys.executable, "-m", "channels_distributed.cli", "worker", *keys,
                  "--app", APP, *(arg for url in urls for arg in ("--url", url)),
                  "--prefix", prefix, "--log-level", "error"], root)


def uvicorn(target: str, port: int, *extra: str, **env: str) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "uvicorn", target, "--port", str(port),
                  "--log-level", "warning", "--no-access-log", *extra], **env)


def wait_ok(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def wrk(url: str, connections: int, duration: float) -> dict[str, float]:
    seconds = f"-d{max(1, round(duration))}s"
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", seconds, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {"rps": rps, "requests": total, "p50": _percentile(out, "50%"),
            "p99": _percentile(out, "99%"), "errors": float("Non-2xx" in out or "errors" in out),
            "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
            "socket_errors": float(sum(map(int, socket.groups()))) if socket else 0.0}


def _percentile(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# Commands only our Lua scripts run (clients never send these directly on the request path; DEL
# is the acknowledgement's: it deletes a given-up mark).
_SCRIPT_ONLY = ("llen", "rpush", "pexpire", "lrem", "lmove", "del")


def redis_stats(redis: RedisServer) -> tuple[int, int]:
    """(commands sent by clients, all commands including those run inside scripts)."""
    info = redis.command("INFO", "commandstats").decode()
    calls = {name: int(n) for name, n in re.findall(r"cmdstat_(\w+):calls=(\d+)", info)}
    everything = sum(n for name, n in calls.items() if name != "info")
    inside = sum(calls.get(name, 0) for name in _SCRIPT_ONLY)
    return everything - inside, everything


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--low", type=int, default=1)
    parser.add_argument("--high", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved runs per target; medians are reported")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout, built in place: its edge and worker too")
    args = parser.parse_args()
    return run_with_servers(_run, args)


Run = Callable[[argparse.Namespace, RedisServer, Path, list[subprocess.Popen[bytes]]], int]


def run_with_servers(run: Run, args: argparse.Namespace) -> int:
    """``run(args, redis, workdir, procs)`` with nginx and wrk at hand, a private Redis and a
    folder of its own; whatever it started (``procs``) is stopped after it, then Redis."""
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y nginx wrk", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="cd-bench-"))
    redis = RedisServer().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        return run(args, redis, workdir, procs)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(15)
        redis.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, redis: RedisServer, workdir: Path,
         procs: list[subprocess.Popen[bytes]]) -> int:
    direct, nginx_port, edge_port, edge_uvicorn = (free_port(), free_port(), free_port(),
                                                   free_port())
    procs.append(uvicorn(APP, direct))
    (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, upstream=direct,
                                                          port=nginx_port))
    procs.append(spawn(["nginx", "-c", str(workdir / "nginx.conf"), "-p", str(workdir),
                        "-g", "daemon off;"]))
    # The distributor under the package's gunicorn worker (the recommended edge) and, for
    # comparison, under uvicorn; both forward to the same worker.
    procs.append(edge(edge_port, [redis.url]))
    procs.append(uvicorn("bench.distributed:edge_app", edge_uvicorn, "--factory",
                         CD_REDIS_URL=redis.url))
    procs.append(worker([redis.url]))
    targets = {"uvicorn": f"http://127.0.0.1:{direct}/",
               "nginx->uvicorn": f"http://127.0.0.1:{nginx_port}/",
               "edge->redis->worker": f"http://127.0.0.1:{edge_port}/",
               "uvicorn edge->...": f"http://127.0.0.1:{edge_uvicorn}/"}
    if args.before is not None:
        targets["before: edge->...->worker"] = _before(args.before, redis, procs)
    for url in targets.values():
        wait_ok(url)
    # Rounds interleave the targets, so a slow spell of the machine hits all of them alike;
    # each figure is the median of the rounds.
    rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for connections in (args.low, args.high):
            for name, url in targets.items():
                wrk(url, connections, 1.0)  # warm up
                before = redis_stats(redis)
                result = wrk(url, connections, args.duration)
                after = redis_stats(redis)
                result["cmds"] = (after[0] - before[0]) / max(result["requests"], 1)
                result["inner"] = (after[1] - before[1]) / max(result["requests"], 1)
                rounds.setdefault((name, connections), []).append(result)
    results = {key: {field: statistics.median(r[field] for r in runs) for field in runs[0]}
               for key, runs in rounds.items()}
    _report(results, args)
    return 0


def _before(checkout: Path, redis: RedisServer, procs: list[subprocess.Popen[bytes]]) -> str:
    """The edge (under the ASGIWorker) and worker of ``checkout``, under the prefix
    ``before``: the URL of its edge."""
    port = free_port()
    procs.append(edge(port, [redis.url], checkout, CD_PREFIX="before"))
    procs.append(worker([redis.url], "before", checkout))
    return f"http://127.0.0.1:{port}/"


def _report(results: dict[tuple[str, int], dict[str, float]], args: argparse.Namespace) -> None:
    print("edge->redis->worker: the distributor under gunicorn -k channels_distributed.gunicorn."
          "ASGIWorker; 'uvicorn edge->...': the same under uvicorn. Redis commands per request:")
    print("sent by clients, and all commands including those run inside Lua scripts.")
    print(f"(medians of {args.rounds} interleaved {args.duration:g} s runs)")
    print(f"{'target':<22}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'redis cmds/req':>16}{'incl. scripts':>15}")
    for (name, connections), r in results.items():
        ours = "edge" in name
        cmds = f"{r['cmds']:.2f}" if ours else "-"
        inner = f"{r['inner']:.2f}" if ours else "-"
        print(f"{name:<22}{connections:>6}{r['rps']:>10.0f}{r['p50']:>9.3f}{r['p99']:>9.3f}"
              f"{cmds:>16}{inner:>15}")
    # The targets: throughput >= 0.6x nginx->uvicorn (under load: at one connection
    # throughput is only the inverse of latency), p50 added <= 0.3 ms at low load.
    for connections, throughput_target, latency_target in (
        (args.low, "", " (goal <= +0.15 ms)"),
        (args.high, " (goal >= 1.0x)", ""),
    ):
        ours = results["edge->redis->worker", connections]
        nginx = results["nginx->uvicorn", connections]
        direct = results["uvicorn", connections]
        print(f"c={connections}: throughput vs nginx->uvicorn {ours['rps'] / nginx['rps']:.2f}x"
              f"{throughput_target}, vs uvicorn {ours['rps'] / direct['rps']:.2f}x; "
              f"p50 added vs uvicorn {ours['p50'] - direct['p50']:+.3f} ms, "
              f"vs nginx->uvicorn {ours['p50'] - nginx['p50']:+.3f} ms{latency_target}")
        before = results.get(("before: edge->...->worker", connections))
        if before is not None:
            print(f"  before (--before): throughput vs nginx->uvicorn "
                  f"{before['rps'] / nginx['rps']:.2f}x, p50 added vs nginx->uvicorn "
                  f"{before['p50'] - nginx['p50']:+.3f} ms; now / before "
                  f"{ours['rps'] / before['rps']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
