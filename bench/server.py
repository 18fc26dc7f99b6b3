"""Benchmark the gunicorn ASGIWorker against its peers, one worker each, in the same run.

    .venv/bin/python bench/server.py [--duration 5] [--connections 64] [--before CHECKOUT]

Servers: ours (channels_distributed.gunicorn.ASGIWorker), gunicorn + UvicornWorker
(``uvicorn-worker``), gunicorn's built-in ``-k asgi`` at its fastest (its documented options: the
uvloop loop and the ``gunicorn_h1c`` parser, ``--http-parser fast``), granian, and nginx
answering ``return 200`` from one worker process with a configuration this script writes (hello
world only): the line no Python server passes. ``--before CHECKOUT`` adds the ASGIWorker of
another checkout built in place (``setup.py build_ext --inplace``), for a before/after ratio
from the same run. Applications: an ASGI hello world, the seed's legacy hello world (ours only:
the peers cannot run it), and the testproject's Django view. The server runs pinned to CPU 0, wrk
to CPU 1 (``taskset``). Prints requests/s, p50/p99 latency, and ratios against the peers, with the
spread of the ratio over the rounds. Needs ``wrk`` and ``nginx`` (apt-get install wrk nginx) and
the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OURS = "ours (ASGIWorker)"
BEFORE = "ours before (--before)"
UVICORN = "gunicorn+UvicornWorker"
NGINX = "nginx return 200"
HELLO = "hello world"
Result = tuple[float, float, float, float]  # req/s, p50 ms, p99 ms, server CPU us per request

APPS = {
    HELLO: ("testproject.apps_server:asgi_hello", "/"),
    "legacy hello (seed)": ("testproject.apps_server:hello_world", "/"),
    "django view": ("channels_distributed.demo.asgi:application", "/hello/"),
}

# nginx at its fastest for a constant answer: one worker process, no access log, connections kept
# alive as long as the client wants (its default closes one after 1000 requests).
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/plain;
            return 200 "Hello, world";
        }}
    }}
}}
"""


def gunicorn_command(worker: str, *options: str) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "--workers",
        "1",
        "--worker-class",
        worker,
        *options,
        "--log-level",
        "warning",
        "--keep-alive",
        "75",
        "--bind",
    ]


def _nginx(app: str, port: int, folder: Path) -> list[str]:
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(folder=folder, port=port))
    return ["nginx", "-p", str(folder), "-c", str(conf)]


Command = Callable[[str, int, Path], list[str]]
SERVERS: dict[str, Command] = {
    OURS: lambda app, port, folder: [
        *gunicorn_command("channels_distributed.gunicorn.ASGIWorker"),
        f"127.0.0.1:{port}",
        app,
    ],
    BEFORE: lambda app, port, folder: [
        *gunicorn_command("channels_distributed.gunicorn.ASGIWorker"),
        f"127.0.0.1:{port}",
        app,
    ],
    UVICORN: lambda app, port, folder: [
        *gunicorn_command("uvicorn_worker.UvicornWorker"),
        f"127.0.0.1:{port}",
        app,
    ],
    # gunicorn's own ASGI worker (gunicorn >= 24) with the options its documentation gives for
    # speed: uvloop, and the C parser of gunicorn[fast] (gunicorn_h1c); it fails to start
    # without that parser rather than measuring the slower Python one.
    "gunicorn -k asgi": lambda app, port, folder: [
        *gunicorn_command("asgi", "--asgi-loop", "uvloop", "--http-parser", "fast"),
        f"127.0.0.1:{port}",
        app,
    ],
    "granian": lambda app, port, folder: [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-ws",
        app,
    ],
    NGINX: _nginx,
}


def runs_on(server: str, label: str, before: Path | None) -> bool:
    """Whether ``server`` runs the application ``label`` in this run."""
    if server == BEFORE and before is None:
        return False
    if server == NGINX:
        return label == HELLO  # a constant answer: the line for the hello world only
    return not label.startswith("legacy") or server in (OURS, BEFORE)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in a process group of its own: TERM, then KILL after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except ProcessLookupError:  # it exited already (it failed to start, or was stopped)
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def cpu_seconds(session: int) -> float:
    """The CPU time (user and system) the live processes of a session have used so far."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:  # the fields after the command's name: state, ppid, pgrp, session, ... utime, stime
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, path: str, duration: int, connections: int) -> tuple[float, ...]:
    command = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, _latency(out, "50%"), _latency(out, "99%"), float(count)


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@contextlib.contextmanager
def serving(
    server: str, app: str, path: str, before: Path | None
) -> Iterator[tuple[subprocess.Popen[bytes], int] | None]:
    """``server`` running ``app`` pinned to CPU 0, answering ``path``, with its port; None if it
    did not start (said on stderr). Stopped on leaving."""
    port = free_port()
    source = before if server == BEFORE and before is not None else ROOT
    env = {**os.environ, "PYTHONPATH": str(source),
           "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        command = ["taskset", "-c", "0", *SERVERS[server](app, port, Path(folder))]
        proc = subprocess.Popen(
            command,
            cwd=source,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            if not wait_ready(port, path, proc):
                stop_group(proc)
                error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                print(f"  {server} did not start: {error[-2000:]}", file=sys.stderr)
                yield None
            else:
                yield proc, port
        finally:
            stop_group(proc)


def run_one(server: str, app: str, path: str, args: argparse.Namespace) -> Result | None:
    with serving(server, app, path, args.before) as started:
        if started is None:
            return None
        proc, port = started
        if args.warmup:  # Django needs more than a second
            _wrk(port, path, args.warmup, args.connections)
        # The server's CPU time per request as well: on a machine others load, it moves far
        # less than requests per second do (the server waits for the CPU, it does not work).
        cpu = cpu_seconds(proc.pid)
        rps, p50, p99, count = _wrk(port, path, args.duration, args.connections)
        return rps, p50, p99, (cpu_seconds(proc.pid) - cpu) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per server, interleaved; the median is reported")
    parser.add_argument("--app", action="append", choices=list(APPS), default=None,
                        help="measure only this application (repeatable; default: all)")
    parser.add_argument("--server", action="append", choices=[s for s in SERVERS if s != BEFORE],
                        default=None, help="measure only this server (repeatable; default: all)")
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout built in place whose ASGIWorker is measured too")
    args = parser.parse_args()
    for tool in ("wrk", "taskset", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required: apt-get install -y wrk util-linux nginx")
    chosen = [s for s in SERVERS if args.server is None or s in args.server or s == BEFORE]
    # Rounds are interleaved (every server once, then again) so that a slow spell of this
    # shared machine hits all of them alike; the median of each server's rounds is reported,
    # and the ratios of each round give the spread.
    runs: dict[tuple[str, str], list[Result | None]] = {}
    for label, (app, path) in APPS.items():
        if args.app and label not in args.app:
            continue
        for _ in range(args.rounds):
            for server in chosen:
                if not runs_on(server, label, args.before):
                    continue
                result = run_one(server, app, path, args)
                print(f"  measured {label} on {server}: {result}", file=sys.stderr, flush=True)
                runs.setdefault((label, server), []).append(result)
    print_table(runs)
    print(f"(medians of {args.rounds} interleaved {args.duration} s runs, "
          f"{args.connections} connections; ours/this: requests per second; this/ours: the "
          "server's CPU time per request (user and system, all its processes); spread: "
          "lowest-highest of the rounds)")


def ratios(ours: list[Result | None], theirs: list[Result | None], field: int) -> list[float]:
    """Round by round (the rounds ran back to back): ours / theirs in requests per second
    (``field`` 0), or theirs / ours in CPU time per request (3): above 1, ours does better."""
    pairs = [(a, b) for a, b in zip(ours, theirs) if a is not None and b is not None]
    if field == 0:
        return [a[0] / b[0] for a, b in pairs]
    return [b[field] / a[field] for a, b in pairs if a[field] > 0]


def ratio_cells(ratios: list[float]) -> str:
    if not ratios:
        return f"{'-':>7} {'-':>10}"
    return (f"{statistics.median(ratios):>6.2f}x "
            f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>10}")


def print_table(runs: dict[tuple[str, str], list[Result | None]]) -> None:
    print(
        f"\n{'app':<20} {'server':<24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ours/this':>7} {'spread':>10} {'CPU us':>7} {'this/ours':>7} {'spread':>10}"
    )
    for label in APPS:
        ours = runs.get((label, OURS), [])
        for server in SERVERS:
            results = runs.get((label, server))
            if results is None:
                continue
            done = [r for r in results if r is not None]
            if not done:
                print(f"{label:<20} {server:<24} {'failed to start':>10}")
                continue
            rps, p50, p99, cpu = (statistics.median(r[i] for r in done) for i in range(4))
            print(f"{label:<20} {server:<24} {rps:>8.0f} {p50:>7.2f} {p99:>7.2f} "
                  f"{ratio_cells(ratios(ours, results, 0))} {cpu:>7.1f} "
                  f"{ratio_cells(ratios(ours, results, 3))}")


if __name__ == "__main__":
    main()
