"""``channels-distributed status --serve HOST:PORT [--token TOKEN]``: the status as a live page.

One ``StatusServer`` collects the status once a second (``collect``, a coroutine function giving
the ``status --json`` document), whatever the number of clients, keeps the history the page
draws (``history.History``) and answers, read-only:

* ``/``: the page (``page.html``, shipped in the package: nothing loaded from elsewhere);
* ``/status.json``: the latest status, the history (``?since=T``: only samples after T, what the
  page asks for once it has the rest), when it was collected and the last collection's error;
* ``/metrics``: per route key, the figures of the latest status for Prometheus
  (``metrics.RouteCollector``).

The server listens on loopback unless told otherwise; any other address needs a token, which
every request must then carry (``Authorization: Bearer TOKEN``, or ``?token=TOKEN``, which the
page keeps for its own requests). A token given on loopback is required there too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TextIO

from ..endpoints import parse_bind
from ..exceptions import ConfigurationError
from ..transport.topology import Topology
from .collect import collect
from .history import WINDOW, History
from .httpd import HttpServer, Request, Response
from .metrics import INSTALL, RouteCollector, exposition

__all__ = ["MIN_TOKEN", "TOKEN_ENV", "Binding", "StatusServer", "add_serve_arguments",
           "is_loopback", "resolve_binding", "run_status_server", "serve_status"]

log = logging.getLogger(__name__)

#: Where ``--token`` is read from when it is not given (a command line is visible to every user
#: of the machine in ``ps``; the environment is not).
TOKEN_ENV = "CHANNELS_DISTRIBUTED_STATUS_TOKEN"  # noqa: S105 (a variable name)
#: The shortest token accepted: a guessable one would let anyone on the network read the status.
MIN_TOKEN = 16
_NEW_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe())'"  # noqa: S105 (a command)
# The page runs its own inline script and style and talks to this server only: the browser
# refuses anything else, a second guard (after tests/status/test_page.py) against the page ever
# loading from outside.
_PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")
_JSON = "application/json"

Collect = Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Binding:
    """Where the status server listens, and the token its clients must give (None: none)."""

    host: str
    port: int
    token: str | None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address of this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def resolve_binding(bind: str, token: str | None = None) -> Binding:
    """``--serve`` and ``--token`` checked, at start-up (before any connection to Redis): a
    token where the address reaches beyond this machine, and one long enough. ``token`` None
    reads $CHANNELS_DISTRIBUTED_STATUS_TOKEN."""
    host, port = parse_bind(bind, "--serve")
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is not None and not (token.isascii() and token.isprintable() and " " not in token):
        raise ConfigurationError("--token", "expected printable ASCII characters without "
                                 "spaces (it travels in a header and a URL)",
                                 f"make one with: {_NEW_TOKEN}")
    if token is not None and len(token) < MIN_TOKEN:
        raise ConfigurationError(
            "--token", f"a token of {len(token)} characters is easy to guess (at least "
            f"{MIN_TOKEN} are needed)", f"make one with: {_NEW_TOKEN}")
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            "--token", f"--serve {bind} listens on {host}, beyond this machine, and no token "
            "was given: anyone who reaches the port would read the status",
            f"give --token TOKEN (or ${TOKEN_ENV}; make one with: {_NEW_TOKEN}), which every "
            "request must then carry, or listen on loopback: --serve 127.0.0.1:PORT")
    return Binding(host, port, token)


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    given = request.query.get("token")
    return given[-1] if given else None


class StatusServer:
    """Collects once every ``interval`` seconds and serves the page, the JSON and the metrics."""

    def __init__(self, collect: Collect, token: str | None = None, interval: float = 1.0,
                 window: float = WINDOW, timeout: float = 10.0) -> None:
        self._collect = collect
        self._token = token.encode() if token else None
        self.interval = interval
        self.timeout = timeout
        self.history = History(window, interval)
        self.latest: Mapping[str, Any] | None = None
        self.updated_at: float | None = None  # when ``latest`` was collected
        self.error: str | None = None  # why the last collection failed (None: it did not)
        self.collections = 0  # collections attempted: one per interval, whatever the clients
        self._page = files("channels_distributed.status").joinpath("page.html").read_bytes()
        self._metrics = exposition(RouteCollector(
            lambda: self.latest, self.history.totals,
            lambda: self.latest is not None and self.error is None))
        self._http = HttpServer(self.handle)
        self._collector: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Collect once (so the first client sees figures), then collect every interval and
        listen; the address bound."""
        await self.collect_once()
        try:
            address = await self._http.start(host, port)
        except OSError as exc:
            raise ConfigurationError("--serve", f"cannot listen on {host}:{port}: "
                                     f"{exc.strerror or exc}", "choose a free port, or an "
                                     "address of this machine") from None
        self._collector = asyncio.get_running_loop().create_task(self._collect_forever())
        return address

    async def close(self) -> None:
        # The flag as well as the cancel: before Python 3.12, wait_for() swallows a cancel that
        # comes as the collection it waits for completes.
        self._closing = True
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        await self._http.close()

    async def collect_once(self) -> None:
        self.collections += 1
        try:
            status = await asyncio.wait_for(self._collect(), self.timeout)
        except Exception as exc:  # Redis down, a timeout: the page shows why, with the
            # last figures it had; the next collection tries again.
            self.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("status: collecting failed: %s", self.error)
            return
        if self.error is not None:
            log.info("status: collecting again")
        self.latest, self.updated_at, self.error = status, time.time(), None
        self.history.add(status)

    async def _collect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._closing:
            # A fixed rate: the next collection is due an interval after the last was; one
            # that took longer than the interval is followed at once, never twice.
            due = max(due + self.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            await self.collect_once()

    def handle(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        if request.path == "/":
            return Response(200, self._page, "text/html; charset=utf-8",
                            (("Content-Security-Policy", _PAGE_POLICY),))
        if request.path == "/status.json":
            return self._status_json(request)
        if request.path == "/metrics":
            if self._metrics is None:
                return Response(501, f"/metrics needs prometheus_client: {INSTALL}\n".encode())
            body, content_type = self._metrics()
            return Response(200, body, content_type)
        return Response(404, b"not found: the status server answers /, /status.json and "
                             b"/metrics\n")

    def _denied(self, request: Request) -> Response | None:
        if self._token is None:
            return None
        given = _bearer(request)
        if given is None:
            return Response(401, b"a token is needed: Authorization: Bearer TOKEN, or "
                                 b"?token=TOKEN\n",
                            headers=(("WWW-Authenticate", 'Bearer realm="status"'),))
        # In constant time: how long a comparison takes says nothing about the token.
        if not hmac.compare_digest(given.encode(), self._token):
            return Response(403, b"wrong token\n")
        return None

    def _status_json(self, request: Request) -> Response:
        since = None
        if "since" in request.query:
            try:
                since = float(request.query["since"][-1])
            except ValueError:
                return Response(400, b"since: a time in seconds (the t of a sample)\n")
        document = {"status": self.latest, "updated_at": self.updated_at, "error": self.error,
                    "interval_s": self.interval, "history": self.history.as_json(since)}
        return Response(200, json.dumps(document, separators=(",", ":")).encode(), _JSON)


async def run_status_server(collect: Collect, binding: Binding,
                            announce: Callable[[str], object] = print,
                            interval: float = 1.0) -> None:
    """Serve until cancelled (Ctrl-C) or SIGTERM, saying where with ``announce``."""
    server = StatusServer(collect, binding.token, interval)
    host, port = await server.start(binding.host, binding.port)
    shown = f"[{host}]" if ":" in host else host
    token = " (every request needs the token: ?token=TOKEN)" if binding.token else ""
    announce(f"status page: http://{shown}:{port}/{token} - also /status.json and /metrics")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await server.close()


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """``--serve`` and ``--token``, for both status commands."""
    parser.add_argument("--serve", default=None, metavar="HOST:PORT",
                        help="serve the status as a live page (/), JSON (/status.json) and "
                             "Prometheus metrics (/metrics) on HOST:PORT until Ctrl-C; an "
                             "address but loopback needs --token (docs/status-page.rst)")
    parser.add_argument("--token", default=None,
                        help="with --serve: the token every request must carry "
                             "(Authorization: Bearer TOKEN, or ?token=TOKEN); default: "
                             f"${TOKEN_ENV}")


def serve_status(topology: Callable[[], Topology], prefix: str, args: argparse.Namespace,
                 out: TextIO) -> int:
    """``--serve``: the status of ``topology()`` (made in the server's event loop) under
    ``prefix``, read with ``args.top`` and ``args.scan_limit``; until Ctrl-C or SIGTERM."""
    binding = resolve_binding(args.serve, args.token)  # before any connection to Redis
    if args.json or args.watch is not None:
        flag = "--json" if args.json else "--watch"
        raise ConfigurationError(flag, f"{flag} prints the status; --serve serves it",
                                 "give --serve alone (the page and /status.json refresh every "
                                 "second), or leave --serve out")

    def announce(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    async def serve() -> None:
        redis = topology()
        try:
            await run_status_server(lambda: collect(redis, prefix, top=args.top,
                                                    scan_limit=args.scan_limit),
                                    binding, announce)
        finally:
            await redis.close()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the server is stopped
        asyncio.run(serve())
    return 0
