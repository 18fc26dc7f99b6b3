"""Instructions per HTTP request in the server, counted by callgrind (stable on a loaded machine).

    .venv/bin/python bench/callgrind_server.py [--small 1000] [--large 6000] [--pure]

Each scenario runs twice under ``valgrind --tool=callgrind``, with ``--small`` and ``--large``
requests: the difference of the two totals divided by the difference of the request counts is
the cost of one request, without the start-up (imports, the first requests warming the caches).
Everything runs in one process on uvloop: a ``Server`` (``channels_distributed.server``, the
build ``compiled.py`` selects) on a loopback port and a minimal client protocol sending the next
request on one kept-alive connection when the previous response arrived. The count includes the
client's few Python lines and uvloop, not the kernel. Scenarios:

* ``get``: ``GET /`` answered with a 12-byte body (one header field), as in ``bench/server.py``;
* ``post``: ``POST /`` with a 64-byte body the application reads with ``receive()`` and echoes.

``--pure`` sets ``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` (the Python sources); without it the
environment is passed on as set (``bench/sources.py`` runs it with a set of modules from their
sources). Needs valgrind (apt-get install valgrind); about a minute per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BODY = b"Hello, world"
POSTED = b"x" * 64
REQUESTS = {
    "get": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: callgrind\r\n\r\n",
    "post": b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: callgrind\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n" + POSTED,
}
ENDINGS = {"get": BODY, "post": POSTED}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = BODY
    if scope["method"] == "POST":
        body = b""
        more = True
        while more:
            event = await receive()
            body += event["body"]
            more = event["more_body"]
    await send(
        {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


class Client(asyncio.Protocol):
    """Sends ``request`` again each time the previous response ended, ``count`` times."""

    def __init__(self, request: bytes, ending: bytes, count: int, done: asyncio.Future[None]):
        self.request, self.ending, self.left, self.done = request, ending, count, done
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.buffer.endswith(self.ending):
            return
        self.buffer = b""
        self.left -= 1
        if self.left:
            self.transport.write(self.request)
        elif not self.done.done():
            self.done.set_result(None)


async def serve_client(application: Any, make_client: Any) -> None:
    """Serve ``application`` on a loopback port and run one client on it until the future it is
    given (``make_client(done)``) is done; ``bench/callgrind_ws.py`` serves its own this way."""
    from channels_distributed.loop import serving_gc
    from channels_distributed.server import Server, ServerConfig

    loop = asyncio.get_running_loop()
    server = Server(application, ServerConfig(), loop=loop)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server.start([listener])
    # As the gunicorn worker does (loop.serving_gc): fewer, smaller collections.
    with serving_gc(ServerConfig().gc_threshold):
        done: asyncio.Future[None] = loop.create_future()
        port = listener.getsockname()[1]
        transport, _ = await loop.create_connection(lambda: make_client(done), "127.0.0.1", port)
        await asyncio.wait_for(done, 600)
    transport.close()
    await server.shutdown(graceful=False)
    listener.close()


def on_uvloop(coroutine: Any) -> None:
    """Run ``coroutine`` to its end on a new uvloop event loop (the ASGIWorker's)."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()


def child(scenario: str, count: int) -> None:
    on_uvloop(serve_client(app, lambda done: Client(REQUESTS[scenario], ENDINGS[scenario],
                                                    count, done)))


def instructions(scenario: str, count: int, pure: bool, script: str = __file__) -> int:
    """The total Ir callgrind counts for one run of ``count`` requests (or messages): ``script``
    run as ``script --child SCENARIO --requests COUNT`` (``bench/callgrind_ws.py`` is another)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    if pure:
        env["CHANNELS_DISTRIBUTED_NO_EXTENSIONS"] = "1"
    # Otherwise the environment as set: bench/sources.py's set of modules from their sources
    # (bench/compile_gains.py).
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, script, "--child", scenario, "--requests", str(count)],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=3600,
        )
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no summary line in callgrind's output for {scenario} x {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=6000)
    parser.add_argument("--pure", action="store_true", help="run the Python sources")
    parser.add_argument("--scenario", choices=sorted(REQUESTS), action="append")
    parser.add_argument("--child", choices=sorted(REQUESTS), help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    build = "pure-Python" if args.pure else "compiled"
    for scenario in args.scenario or sorted(REQUESTS):
        small = instructions(scenario, args.small, args.pure)
        large = instructions(scenario, args.large, args.pure)
        per_request = (large - small) / (args.large - args.small)
        print(f"{scenario:5} {build:11} {per_request / 1000:8.1f}k instructions per request "
              f"({small:,} Ir for {args.small}, {large:,} Ir for {args.large})", flush=True)


if __name__ == "__main__":
    main()
