"""Instructions per forwarded request, in the worker and in the edge, counted by callgrind.

    .venv/bin/python bench/callgrind_distributed.py [--role worker|edge|both] [--rounds 3]

Instruction counts do not drift with the load of a shared machine as timings do, so they show
what a change to the hot path costs. One process is run under ``valgrind --tool=callgrind``, its
counterpart natively, on a private redis-server:

* ``worker``: a ``Node`` serving hello world under callgrind; a native driver calls the path
  distributor's ASGI application directly (no HTTP server), one request at a time;
* ``edge``: the same driver under callgrind; the ``Node`` native.

Each measured process serves ``--small`` requests in one run and ``--large`` in another; the
difference of their totals over the difference of the counts removes start-up and shutdown,
leaving what one request costs (plus its share of the once-a-second upkeep, a fraction of a
percent). Printed: the median over ``--rounds`` of that figure. ``PYTHONHASHSEED`` is fixed, so
runs of the same code differ by well under 1%. Needs valgrind (``apt-get install -y valgrind``).
Run it on the build you want to measure (``make dev`` compiles the hot path in place;
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` measures the Python sources; ``bench/sources.py`` runs it
with a set of modules from their sources). ``CD_BENCH_METRICS=1`` switches Prometheus metrics on
in both processes (the edge's ``metrics_path``, the worker's ``metrics_bind``): what
``bench/metrics_cost.py`` compares.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels_distributed.embedded import RedisServer  # noqa: E402

KEY = "bench"
STALLED = 3  # the driver's exit status when it stopped making progress
PREFIX = "cg"
# PYTHONPATH as set goes on after ROOT: bench/sources.py runs a set of modules from their sources
# through it.
_ENV = {"PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
    "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"bench"), (b"user-agent", b"callgrind")],
    "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
}


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The worker's application: hello world."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world\n"})


def _metrics(option: str, value: str) -> dict[str, str]:
    return {option: value} if os.environ.get("CD_BENCH_METRICS", "") not in ("", "0") else {}


def run_worker(url: str) -> None:
    from channels_distributed.worker import Node

    Node(hello, key=KEY, url=url, prefix=PREFIX,
         **_metrics("metrics_bind", "127.0.0.1:0")).run()  # until SIGTERM


async def _drive(url: str, requests: int) -> None:
    from channels_distributed.distributor import create_path_distributor

    # A long worker_timeout: the first request waits for a worker still starting.
    app = create_path_distributor(url=url, prefix=PREFIX, routes={"/": KEY},
                                  worker_timeout=300, **_metrics("metrics_path", "/-/metrics"))
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    ended = asyncio.ensure_future(app({"type": "lifespan"}, lifespan.get, _ignore))
    done = [0]
    guard = asyncio.ensure_future(_stall_guard(done))
    for _ in range(requests):
        events: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await asyncio.shield(never)  # the client stays until cancelled

        async def send(event: dict[str, Any], events: list[dict[str, Any]] = events) -> None:
            events.append(event)

        await app(dict(SCOPE), receive, send)
        if not events or events[0].get("status") != 200:
            raise RuntimeError(f"expected a 200 response, got {events!r}")
        done[0] += 1
    if _metrics("metrics_path", ""):
        await _check_counted(app, requests)
    lifespan.put_nowait({"type": "lifespan.shutdown"})  # closes the edge's connections
    done[0] = -1
    await ended
    guard.cancel()


async def _check_counted(app: Any, requests: int) -> None:
    """With metrics on: the edge's page counts every request (a run that measured nothing
    would look cheap)."""
    from prometheus_client.parser import text_string_to_metric_families

    events: list[dict[str, Any]] = []

    async def send(event: dict[str, Any]) -> None:
        events.append(event)

    await app({**SCOPE, "path": "/-/metrics"}, None, send)
    page = b"".join(e.get("body", b"") for e in events).decode()
    counted = {tuple(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(page) for s in family.samples
               if s.name == "channels_distributed_edge_requests_total"}
    key = (("kind", "http"), ("route", KEY), ("status", "200"))
    if counted.get(key) != requests:
        raise RuntimeError(f"the edge counted {counted}, not {requests} requests")


async def _stall_guard(done: list[int], limit: float = 120.0) -> None:
    """No progress for ``limit`` seconds: print where every task waits, and exit 3."""
    last, still = done[0], 0.0
    while True:
        await asyncio.sleep(5.0)  # a few ticks per run: no weight in the counts
        if done[0] != last:
            last, still = done[0], 0.0
            continue
        still += 5.0
        if still >= limit:
            print(f"stalled after {last} request(s) (-1: in lifespan shutdown); tasks:",
                  file=sys.stderr)
            for task in asyncio.all_tasks():
                print(f"  {task!r}", file=sys.stderr)
                # Compiled coroutines have no line numbers for print_stack(): walk the chain.
                awaited: Any = task.get_coro()
                while awaited is not None:
                    print(f"    awaits {getattr(awaited, '__qualname__', awaited)!r}",
                          file=sys.stderr)
                    awaited = getattr(awaited, "cr_await", None)
            sys.stderr.flush()
            os._exit(STALLED)


async def _ignore(event: dict[str, Any]) -> None:
    pass


def run_edge(url: str, requests: int) -> None:
    import uvloop

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(_drive(url, requests))
    finally:
        loop.close()


def _python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--quiet"]


def total_instructions(out: Path) -> int:
    text = out.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no total in {out}")
    return int(found.group(1))


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # what the processes say, shown if one fails
        return subprocess.Popen(args, cwd=ROOT, env=dict(os.environ, **_ENV),
                                stdout=sink, stderr=sink)


def _failed(what: str, log: Path) -> RuntimeError:
    return RuntimeError(f"{what} failed; its output:\n{log.read_text(errors='replace')}")


class _Stalled(RuntimeError):
    """A run stopped making progress; measured again (see the notes printed)."""


def measure(role: str, url: str, requests: int, out: Path, attempts: int = 3) -> int:
    """Total instructions of the ``role`` process serving ``requests`` requests."""
    for _ in range(attempts):
        try:
            return _measure_once(role, url, requests, out)
        except _Stalled as exc:
            print(f"note: {exc}; measuring again", file=sys.stderr, flush=True)
    raise RuntimeError(f"{role} with {requests} requests stalled {attempts} times")


def _measure_once(role: str, url: str, requests: int, out: Path) -> int:
    log = out.with_suffix(".log")
    log.unlink(missing_ok=True)
    measured = callgrind(out)
    worker = _spawn((measured if role == "worker" else []) + _python("_worker", url), log)
    try:
        edge = _spawn((measured if role == "edge" else []) + _python("_edge", url, str(requests)),
                      log)
        status = _wait(edge, 900, "the edge")
        if status == STALLED:
            raise _Stalled(f"the edge stalled:\n{log.read_text(errors='replace')}")
        if status != 0:
            raise _failed("the edge", log)
    finally:
        worker.send_signal(signal.SIGTERM)  # drains, then exits: callgrind writes its total
        status = _wait(worker, 120, "the worker (after SIGTERM)")
    if status != 0:
        raise _failed("the worker", log)
    return total_instructions(out)


def _wait(process: subprocess.Popen[bytes], seconds: float, what: str) -> int:
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(60)
        raise _Stalled(f"{what} did not finish within {seconds:g} s") from None


def per_request(role: str, url: str, small: int, large: int, workdir: Path) -> float:
    few = measure(role, url, small, workdir / f"{role}-{small}.out")
    many = measure(role, url, large, workdir / f"{role}-{large}.out")
    return (many - few) / (large - small)


def _build() -> str:
    import importlib

    import channels_distributed
    from channels_distributed.compiled import COMPILED, compiled_modules

    for name in COMPILED:
        importlib.import_module(name)
    where = Path(channels_distributed.__file__).parent
    return f"{where}: {len(compiled_modules())} of {len(COMPILED)} hot-path modules compiled"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        run_worker(sys.argv[2])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_edge":
        run_edge(sys.argv[2], int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=("worker", "edge", "both"), default="both")
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is missing: apt-get install -y valgrind", file=sys.stderr)
        return 2
    roles = ("worker", "edge") if args.role == "both" else (args.role,)
    print(_build(), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cd-callgrind-"))
    redis = RedisServer().start()
    try:
        for role in roles:
            figures = [per_request(role, redis.url, args.small, args.large, workdir)
                       for _ in range(args.rounds)]
            shown = ", ".join(f"{f / 1000:.1f}k" for f in figures)
            print(f"{role}: {statistics.median(figures) / 1000:.1f}k instructions per request "
                  f"(median of {shown})", flush=True)
    finally:
        redis.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
