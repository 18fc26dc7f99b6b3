"""The ``channels-distributed`` console command.

::

    channels-distributed worker KEY [KEY ...] --app module:attr [--url redis://host:6379/0 ...]
    channels-distributed status [--url URL ...] [--prefix P] [--json] [--watch [SECONDS]]
    channels-distributed routes [--url URL ...] [--prefix P] [--json] [set|switch|drain|clear ...]
    channels-distributed demo [--serve]
    channels-distributed check [--url URL ...] [--prefix P] [--worker-timeout S] [--json]
    channels-distributed --version

``worker`` runs a ``Node`` on the given route keys. ``--url`` given several times names
several independent servers (sharded, placed as ``hosts=[...]`` places them); ``$REDIS_URL``
may hold several URLs separated by spaces; any URL may be a ``redis+sentinel://`` one.
``status`` shows every route key, worker and edge under the prefix, and the channel layer's
deepest queues (``status/``; docs/status.rst). ``routes`` shows the routes in force and changes
the route overrides every edge applies (``routes.py``; docs/routes.rst). ``demo`` runs the demo
project shipped in the package (``demo/``) distributed: Redis (or ``REDIS_URL``), the edge,
two ``manage.py runworker`` workers on different keys, HTTP requests and a chat through them,
printing which worker served what; with ``--serve`` it then stays up until Ctrl-C, for a
browser or curl. ``check`` is the Redis preflight (``preflight.py``): exit status 0 without
errors, 1 with any, 2 on bad settings. ``--version`` prints the package's version. The help
texts are plain text (they are printed as written).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .conf.checks import field_defaults
from .conf.node import INTERFACES, NodeConfig
from .conf.target import RedisTarget
from .exceptions import ConfigurationError, LifespanFailure
from .logs import LOG_FORMAT_ENV, LOG_FORMATS, setup_logging

__all__ = ["add_node_arguments", "import_app", "main", "redis_urls"]


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


DESCRIPTION = """\
channels-distributed: serve route keys of the path distributor with a worker, or run the
demo (a Django project distributed: Redis, an edge, two workers)."""

_DEFAULTS = field_defaults(NodeConfig)

CONCURRENCY_HELP = f"""\
connections served at once (default {_DEFAULTS['concurrency']}). An open WebSocket holds a
slot for as long as it is open, idle or not: at the limit the worker takes nothing more, and a
connection no worker takes within the edge's worker_timeout gets 503 (a WebSocket is closed
with 1013). Size it for the requests in flight plus the WebSockets a worker keeps open, or
serve WebSocket routes with workers of their own and a larger limit."""

WORKER_EPILOG = """\
WebSockets and limits: each open WebSocket also counts against the edge server's connection
limit (gunicorn --worker-connections, 1000 per edge process by default; at the limit new
clients wait unanswered). Give both room for every WebSocket expected open at once."""

DEMO_DESCRIPTION = """\
Run the demo project shipped in the package, from any directory: a private Redis (or
$REDIS_URL), the edge under gunicorn, two manage.py runworker workers on different route keys,
then a page, a form with its CSRF token, an admin login, a background task and a chat between
two WebSockets on different workers, printing which worker served what. Needs the demo extra:
pip install 'channels-distributed[demo]'."""


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    text = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="channels-distributed", description=DESCRIPTION,
                                     formatter_class=text)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="serve route keys with an application",
                                 description="Take connections from route keys (and messages "
                                 "from Channels channels) and run an ASGI application for them.",
                                 epilog=WORKER_EPILOG, formatter_class=text)
    worker.add_argument("keys", nargs="*", metavar="KEY", help="route key(s) to take from")
    worker.add_argument("--channel", action="append", default=[], metavar="NAME",
                        help="also serve this Channels channel (repeatable), as "
                             "channels' runworker does")
    worker.add_argument("--app", required=True, help="the application, as module:attribute")
    worker.add_argument("--url", action="append", default=[], metavar="URL",
                        help="Redis URL; repeat it for several servers (default: $REDIS_URL, "
                             "URLs separated by spaces, or redis://localhost:6379/0)")
    worker.add_argument("--prefix", default=None,
                        help=f"key prefix (default: {RedisTarget.prefix})")
    add_node_arguments(worker)
    worker.add_argument("--log-level", default="info")
    _status_parser(commands)
    _routes_parser(commands)
    demo = commands.add_parser(
        "demo", help="run the demo: a Django project distributed over Redis, an edge and two "
        "workers", description=DEMO_DESCRIPTION, formatter_class=text)
    demo.add_argument("--serve", action="store_true",
                      help="after the tour, keep the edge and workers up until Ctrl-C")
    _add_check(commands)
    return parser


def _status_parser(commands: Any) -> None:
    from .status.command import STATUS_DESCRIPTION, add_status_arguments

    status = commands.add_parser("status", help="show route keys, workers, edges and the "
                                 "layer's queues", description=STATUS_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--url", action="append", default=[], metavar="URL",
                        help="Redis URL, as the worker takes it; repeat it for several servers "
                             "(default: $REDIS_URL, or redis://localhost:6379/0)")
    status.add_argument("--prefix", default=None,
                        help=f"key prefix (default: {RedisTarget.prefix})")
    add_status_arguments(status)


def _routes_parser(commands: Any) -> None:
    from .routes import ROUTES_DESCRIPTION, add_routes_arguments

    routes = commands.add_parser("routes", help="show the routes in force; split, switch, "
                                 "drain route keys live", description=ROUTES_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    routes.add_argument("--url", action="append", default=[], metavar="URL",
                        help="Redis URL, as the worker takes it; repeat it for several servers "
                             "(default: $REDIS_URL, or redis://localhost:6379/0)")
    routes.add_argument("--prefix", default=None,
                        help=f"key prefix (default: {RedisTarget.prefix})")
    add_routes_arguments(routes)


def _routes(args: argparse.Namespace) -> int:
    from .routes import run_routes

    target = RedisTarget.resolve(hosts=redis_urls(args.url), prefix=args.prefix)
    return run_routes(target.hosts, target.prefix, args)


def _status(args: argparse.Namespace) -> int:
    from .status.command import run_status

    target = RedisTarget.resolve(hosts=redis_urls(args.url), prefix=args.prefix)
    return run_status(target.hosts, target.prefix, args)


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's settings both worker commands take (this one and ``manage.py runworker``),
    with the defaults of ``NodeConfig``'s fields."""
    parser.add_argument("--interface", default=_DEFAULTS["interface"], choices=INTERFACES,
                        help="how the application is called (default: judged by it)")
    parser.add_argument("--concurrency", type=int, default=_DEFAULTS["concurrency"],
                        help=CONCURRENCY_HELP)
    parser.add_argument("--grace", type=float, default=_DEFAULTS["grace"],
                        help="seconds in-flight connections get on SIGTERM (default "
                             f"{_DEFAULTS['grace']:g})")
    parser.add_argument("--health-bind", default=None, metavar="HOST:PORT",
                        help="answer health probes on HOST:PORT: GET /live (200 while the "
                             "process runs) and /ready (200 only while it holds its lease in "
                             "Redis and is not stopping, else 503)")
    parser.add_argument("--metrics-bind", default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics on HOST:PORT at GET /metrics: in flight, "
                             "served, application errors and take latency per route key, and "
                             "the channel layer's and Redis' figures (needs prometheus_client: "
                             "pip install 'channels-distributed[metrics]'; may be the "
                             "--health-bind address)")
    parser.add_argument("--log-format", default=None, choices=LOG_FORMATS,
                        help="log lines as text (default) or as one JSON object each (default: "
                             f"${LOG_FORMAT_ENV}, else text)")


def redis_urls(given: Sequence[str]) -> list[str]:
    """The servers ``--url`` names, else those of ``$REDIS_URL``, else the local default."""
    from .conf.hosts import split_urls

    if given:
        return list(given)
    return split_urls(os.environ.get("REDIS_URL") or "redis://localhost:6379/0")


CHECK_DESCRIPTION = """\
The Redis preflight: on every primary of the servers given (each sharded server, the master
Sentinel names, each primary of a cluster), whether Redis would lose the edge's and the
workers' work or refuse it: an evicting maxmemory-policy, a Redis too old for the topology, an
ACL that refuses a command, the keys under the prefix or the presence channels (each command is
tried on a scratch key, deleted after), and a clock skew between this machine and Redis beyond
what deadlines tolerate. One line per finding with its fix, then a summary. Exit status: 0 with
no errors (warnings printed), 1 with any error, 2 on bad settings."""


def _add_check(commands: Any) -> None:
    from .conf.distributor import DistributorConfig

    timeout = field_defaults(DistributorConfig)["worker_timeout"]
    check = commands.add_parser("check", help="check that Redis would neither lose nor refuse "
                                "the package's work", description=CHECK_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--url", action="append", default=[], metavar="URL",
                       help="Redis URL, as the worker takes it; repeat it for several servers "
                            "(default: $REDIS_URL, URLs separated by spaces, or "
                            "redis://localhost:6379/0)")
    check.add_argument("--prefix", default=None,
                       help=f"key prefix (default: {RedisTarget.prefix})")
    check.add_argument("--worker-timeout", type=float, default=timeout, metavar="SECONDS",
                       help="the edge's worker_timeout, which bounds the clock skew deadlines "
                            f"tolerate (default {timeout:g})")
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def _check(args: argparse.Namespace) -> int:
    import json

    from .preflight import run

    if not args.worker_timeout > 0:
        raise ConfigurationError("--worker-timeout", f"expected seconds above 0, got "
                                 f"{args.worker_timeout:g}", "give e.g. --worker-timeout 5")
    # Whatever the check meets is a finding: the transport's own log lines would repeat them.
    setup_logging("critical")
    target = RedisTarget.resolve(hosts=redis_urls(args.url), prefix=args.prefix)
    report = run(target.hosts, target.prefix, window=args.worker_timeout)
    print(json.dumps(report.as_json(), indent=2) if args.json else "\n".join(report.lines()))
    return report.status


def _worker(args: argparse.Namespace) -> int:
    from .worker import Node

    setup_logging(args.log_level, log_format=args.log_format)
    app = import_app(args.app)
    if not args.keys and not args.channel:
        raise ConfigurationError("KEY", "nothing to serve",
                                 "give route key(s) and/or --channel NAME")
    Node(app, keys=args.keys or None, channels=args.channel,
         hosts=redis_urls(args.url), prefix=args.prefix,
         interface=args.interface, concurrency=args.concurrency, grace=args.grace,
         health_bind=args.health_bind, metrics_bind=args.metrics_bind).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "status":
            return _status(args)
        if args.command == "routes":
            return _routes(args)
        if args.command == "check":
            return _check(args)
        from .demo.run import run_demo

        return run_demo(serve=args.serve)
    except (ConfigurationError, LifespanFailure) as exc:
        print(f"channels-distributed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C is how a user ends the demo: whatever it started is stopped by then.
        print("channels-distributed: interrupted", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
