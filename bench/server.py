"""Benchmark the gunicorn ASGIWorker against its peers, one worker each, in the same run.

    .venv/bin/python bench/server.py [--duration 5] [--connections 64]

Servers: ours (channels_distributed.gunicorn.ASGIWorker), gunicorn + UvicornWorker
(``uvicorn-worker``), gunicorn's built-in ``-k asgi``, and granian. Applications: an ASGI hello
world, the seed's legacy hello world (ours only: the peers cannot run it), and the testproject's
Django view. The server runs pinned to CPU 0, wrk to CPU 1 (``taskset``). Prints requests/s,
p50/p99 latency, and ratios against the peers. Needs ``wrk`` (apt-get install wrk) and
``pip install uvicorn-worker granian``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OURS = "ours (ASGIWorker)"
UVICORN = "gunicorn+UvicornWorker"

APPS = {
    "hello world": ("testproject.apps_server:asgi_hello", "/"),
    "legacy hello (seed)": ("testproject.apps_server:hello_world", "/"),
    "django view": ("channels_distributed.demo.asgi:application", "/hello/"),
}


def _gunicorn(worker: str) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "--workers",
        "1",
        "--worker-class",
        worker,
        "--log-level",
        "warning",
        "--keep-alive",
        "75",
        "--bind",
    ]


SERVERS = {
    OURS: lambda app, port: [
        *_gunicorn("channels_distributed.gunicorn.ASGIWorker"),
        f"127.0.0.1:{port}",
        app,
    ],
    UVICORN: lambda app, port: [
        *_gunicorn("uvicorn_worker.UvicornWorker"),
        f"127.0.0.1:{port}",
        app,
    ],
    "gunicorn -k asgi": lambda app, port: [*_gunicorn("asgi"), f"127.0.0.1:{port}", app],
    "granian": lambda app, port: [
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
}


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in a process group of its own: TERM, then KILL after 15 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, path: str, proc: subprocess.Popen[bytes]) -> bool:
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


def _wrk(port: int, path: str, duration: int, connections: int) -> tuple[float, float, float]:
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
    return rps, _latency(out, "50%"), _latency(out, "99%")


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_one(server: str, app: str, path: str, duration: int, connections: int) -> tuple | None:
    port = _free_port()
    command = ["taskset", "-c", "0", *SERVERS[server](app, port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        if not _wait_ready(port, path, proc):
            return None
        _wrk(port, path, 2, connections)  # warm-up (Django needs more than a second)
        return _wrk(port, path, duration, connections)
    finally:
        stop_group(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per server, interleaved; the median is reported")
    parser.add_argument("--app", action="append", choices=list(APPS), default=None,
                        help="measure only this application (repeatable; default: all)")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required: apt-get install -y wrk util-linux")
    # Rounds are interleaved (every server once, then again) so that a slow spell of this
    # shared machine hits all of them alike; the median of each server's rounds is reported.
    runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    failed: set[tuple[str, str]] = set()
    for label, (app, path) in APPS.items():
        if args.app and label not in args.app:
            continue
        for _ in range(args.rounds):
            for server in SERVERS:
                if label.startswith("legacy") and server != OURS:
                    continue
                result = run_one(server, app, path, args.duration, args.connections)
                print(f"  measured {label} on {server}: {result}", file=sys.stderr)
                if result is None:
                    failed.add((label, server))
                else:
                    runs.setdefault((label, server), []).append(result)
    results: dict[tuple[str, str], tuple | None] = {key: None for key in failed}
    for key, values in runs.items():
        results[key] = tuple(statistics.median(v[i] for v in values) for i in range(3))
    print_table(results)
    print(f"(medians of {args.rounds} interleaved {args.duration} s runs, "
          f"{args.connections} connections)")


def print_table(results: dict[tuple[str, str], tuple | None]) -> None:
    print(
        f"\n{'app':<20} {'server':<24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'ours / this':>12}"
    )
    for label in APPS:
        ours = results.get((label, OURS))
        for server in SERVERS:
            result = results.get((label, server), "absent")
            if result == "absent":
                continue
            if result is None:
                print(f"{label:<20} {server:<24} {'failed to start':>10}")
                continue
            rps, p50, p99 = result  # type: ignore[misc]
            ratio = f"{ours[0] / rps:.2f}x" if ours else "-"
            print(f"{label:<20} {server:<24} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>12}")


if __name__ == "__main__":
    main()
