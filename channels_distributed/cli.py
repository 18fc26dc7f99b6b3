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

from .exceptions import ConfigurationError

__all__ = ["import_app", "main"]


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
    worker.add_argument("keys", nargs="+", metavar="KEY", help="route key(s) to take from")
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


def _worker(args: argparse.Namespace) -> int:
    from .worker import Node

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = import_app(args.app)
    Node(app, keys=args.keys, url=args.url or "redis://localhost:6379/0", prefix=args.prefix,
         interface=args.interface, concurrency=args.concurrency, grace=args.grace).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "worker":
            return _worker(args)
        from .demo import run_demo

        return run_demo(args.requests)
    except ConfigurationError as exc:
        print(f"channels-distributed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
