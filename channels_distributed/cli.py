"""The ``channels-distributed`` console command.

::

    channels-distributed worker KEY [KEY ...] --app module:attr [--url redis://host:6379/0]
    channels-distributed demo

``worker`` runs a ``Node`` on the given route keys. ``demo`` starts Redis (or uses ``REDIS_URL``),
an edge server running the path distributor, two workers on different keys, sends HTTP requests
and a WebSocket exchange through them, prints which worker served what, and stops everything.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import ConfigurationError, LifespanFailure

__all__ = ["console_logging", "demo_app", "demo_edge", "import_app", "main", "run_demo"]


def import_app(spec: str) -> Any:
    """``module:attr`` (``attr`` may be dotted) -> the object."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError("--app", f"{spec!r} is not module:attribute",
                                 "write e.g. --app myproject.asgi:application")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError("--app", f"cannot import {module_name!r}: {exc}",
                                 "check the module path and the current directory") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError("--app", f"{module_name!r} has no attribute {attr!r}",
                                     "check the attribute name") from None
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="channels-distributed", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="serve route keys with an application")
    worker.add_argument("keys", nargs="*", metavar="KEY", help="route key(s) to take from")
    worker.add_argument("--channel", action="append", default=[], metavar="NAME",
                        help="also serve this Channels channel (repeatable), as "
                             "channels' runworker does")
    worker.add_argument("--app", required=True, help="the application, as module:attribute")
    worker.add_argument("--url", default=os.environ.get("REDIS_URL"),
                        help="Redis URL (default: $REDIS_URL or redis://localhost:6379/0)")
    worker.add_argument("--prefix", default=None, help="key prefix (default: asgi)")
    worker.add_argument("--interface", default="auto", choices=["auto", "asgi3", "asgi2",
                                                                  "legacy"])
    worker.add_argument("--concurrency", type=int, default=100,
                        help="connections served at once (default 100)")
    worker.add_argument("--grace", type=float, default=30.0,
                        help="seconds in-flight connections get on SIGTERM (default 30)")
    worker.add_argument("--log-level", default="info")
    demo = commands.add_parser("demo", help="run the README demo end to end")
    demo.add_argument("--requests", type=int, default=4)
    return parser


LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def console_logging(level: str, name: str = "") -> None:
    """For the console commands: log to stderr with time and level, at ``level``, through the
    logger ``name`` (the root logger by default), unless logging is configured already (the
    root logger or that one has a handler). The library itself never adds a handler."""
    target = logging.getLogger(name)
    if logging.getLogger().handlers or target.handlers:
        return
    try:
        target.setLevel(level.upper())
    except ValueError:
        raise ConfigurationError("--log-level", f"unknown level {level!r}",
                                 "use debug, info, warning, error or critical") from None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    target.addHandler(handler)


def _worker(args: argparse.Namespace) -> int:
    from .worker import Node

    console_logging(args.log_level)
    app = import_app(args.app)
    if not args.keys and not args.channel:
        raise ConfigurationError("KEY", "nothing to serve",
                                 "give route key(s) and/or --channel NAME")
    Node(app, keys=args.keys or None, channels=args.channel,
         url=args.url or "redis://localhost:6379/0", prefix=args.prefix,
         interface=args.interface, concurrency=args.concurrency, grace=args.grace).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "worker":
            return _worker(args)
        return run_demo(args.requests)
    except (ConfigurationError, LifespanFailure) as exc:
        print(f"channels-distributed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C is how a user ends the demo: whatever it started is stopped by then.
        print("channels-distributed: interrupted", file=sys.stderr)
        return 0


# The demo ----------------------------------------------------------------------------------------

DEMO_ROUTES = {"^/api/": "demo-api", "/": "demo-site"}


def demo_edge() -> Any:
    """The demo's edge application (``uvicorn --factory``): the path distributor."""
    from .distributor import create_path_distributor

    return create_path_distributor(url=os.environ["CD_DEMO_URL"],
                                   prefix=os.environ["CD_DEMO_PREFIX"], routes=DEMO_ROUTES)


_demo_layers: dict[str, Any] = {}


def _demo_layer() -> Any:
    """This worker process's channel layer (one per process, as in a Django project)."""
    from .layer import RedisChannelLayer

    url = os.environ["CD_DEMO_URL"]
    if url not in _demo_layers:
        _demo_layers[url] = RedisChannelLayer(hosts=[url], prefix=os.environ["CD_DEMO_PREFIX"])
    return _demo_layers[url]


async def demo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The demo's worker application: says who served a request; a WebSocket joins a chat room
    (a channel layer group) that spans both workers."""
    who = f"worker {os.environ.get('CD_DEMO_NAME', '?')} (pid {os.getpid()}, key " \
          f"{os.environ.get('CD_DEMO_KEY', '?')})"
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": who.encode()})
    elif scope["type"] == "websocket":
        await _demo_chat(f"worker {os.environ.get('CD_DEMO_NAME', '?')}", receive, send)


async def _demo_chat(who: str, receive: Any, send: Any) -> None:
    import asyncio

    layer = _demo_layer()
    channel = await layer.new_channel()
    await layer.group_add("demo-room", channel)
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})

    async def relay_room() -> None:  # group messages -> this socket
        while True:
            message = await layer.receive(channel)
            await send({"type": "websocket.send",
                        "text": f"{message['text']} (sent by {message['by']}, "
                                f"delivered by {who})"})

    relay = asyncio.ensure_future(relay_room())
    try:
        while (event := await receive())["type"] == "websocket.receive":
            await layer.group_send("demo-room", {"type": "chat.message",
                                                 "text": event.get("text"), "by": who})
    finally:
        relay.cancel()
        await layer.group_discard("demo-room", channel)


def run_demo(requests: int = 4) -> int:
    """Redis, an edge, two workers on different keys, traffic through them, a clean stop."""
    import importlib.util

    for needed in ("gunicorn", "httpx"):
        if importlib.util.find_spec(needed) is None:
            raise ConfigurationError("demo", f"the demo needs {needed}",
                                     "pip install 'channels-distributed[demo]'")
    from .embedded import RedisServer, server_version

    console_logging("warning")  # the demo's own output is print()ed
    redis = None
    url = os.environ.get("REDIS_URL")
    if not url:
        redis = RedisServer().start()
        url = redis.url
        print(f"* started a private Redis at {url}: {redis.binary} "
              f"({server_version(redis.binary)})")
    else:
        print(f"* using Redis at {url} (REDIS_URL)")
    procs: list[Any] = []
    try:
        return _demo(url, procs, requests)
    finally:
        _stop_all(procs, redis)


def _stop_all(procs: list[Any], redis: Any) -> None:
    """Stop what the demo started; a second Ctrl-C cannot cut this short and leave processes."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for proc in reversed(procs):
            _stop(proc)
        if redis is not None:
            redis.cleanup()
        print("* stopped everything", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _demo(url: str, procs: list[Any], requests: int) -> int:
    import subprocess

    from .embedded import free_port

    env = dict(os.environ, CD_DEMO_URL=url, CD_DEMO_PREFIX=f"demo{os.getpid()}")
    # Each child gets a session of its own: Ctrl-C in a terminal signals the whole foreground
    # process group, and a child still starting up would die of it mid-import, noisily. The
    # demo catches it and stops them in order instead (_stop_all).
    port = free_port()
    procs.append(subprocess.Popen([
        sys.executable, "-m", "gunicorn", "channels_distributed.cli:demo_edge()",
        "--worker-class", "channels_distributed.gunicorn.ASGIWorker", "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], env=env,
        start_new_session=True))
    print(f"* edge: gunicorn (ASGIWorker) running the path distributor on "
          f"http://127.0.0.1:{port}, routes {DEMO_ROUTES}")
    for name, key in (("A", "demo-api"), ("B", "demo-site")):
        procs.append(subprocess.Popen([
            sys.executable, "-m", "channels_distributed.cli", "worker", key, "--app",
            "channels_distributed.cli:demo_app", "--url", url, "--prefix",
            env["CD_DEMO_PREFIX"], "--log-level", "error"],
            env=dict(env, CD_DEMO_NAME=name, CD_DEMO_KEY=key), start_new_session=True))
        print(f"* worker {name} listening on route key {key!r}")
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base + "/api/ready", procs)
    _wait_ready(base + "/ready", procs)
    import httpx

    paths = ["/api/orders", "/about", "/api/users", "/"]
    for i in range(requests):
        path = paths[i % len(paths)]
        response = httpx.get(base + path, timeout=10)
        print(f"  GET {path:<12} -> {response.status_code} served by {response.text}")
    import asyncio

    for line in asyncio.run(_demo_websocket(base.replace("http", "ws"))):
        print(f"  {line}")
    return 0


async def _demo_websocket(base: str) -> list[str]:
    """Two WebSockets on different workers, one chat room: a group broadcast crosses over."""
    import asyncio

    import websockets

    lines = ["WebSocket: alice on /api/chat (worker A), bob on /chat (worker B), "
             "both in the channel layer group 'demo-room'"]
    async with websockets.connect(base + "/api/chat", open_timeout=10) as alice, \
            websockets.connect(base + "/chat", open_timeout=10) as bob:
        # Each socket joined the group before it was accepted: both are in the room now.
        for speaker, name, text in ((alice, "alice", "hello from alice"),
                                    (bob, "bob", "hi alice, bob here")):
            await speaker.send(text)
            for listener, who in ((alice, "alice"), (bob, "bob")):
                got = str(await asyncio.wait_for(listener.recv(), 10))
                lines.append(f"{name} said {text!r} -> {who} got: {got}")
    return lines


def _wait_ready(url: str, procs: list[Any], timeout: float = 30.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise ConfigurationError("demo", "a demo process exited early",
                                     "see its output above")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise ConfigurationError("demo", f"{url} did not answer within {timeout:g} s",
                             "see the processes' output above")


def _stop(proc: Any) -> None:
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
