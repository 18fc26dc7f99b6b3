"""What ``channels-distributed status`` and ``manage.py distributed_status`` both do: read the
status once, or every ``--watch`` seconds until Ctrl-C, and print it as a table or as JSON.

Under ``--watch`` the table is redrawn in place on a terminal (elsewhere each one follows the
last), and ``--json`` prints one document per line. When Redis does not answer, a single read
fails with exit status 1; a watch says so and goes on trying.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ..conf.hosts import HostSpec
from ..exceptions import ConfigurationError, RedisUnavailable, ReplyError
from ..transport.topology import Topology
from .collect import SCAN_LIMIT, TOP, collect
from .render import render
from .serve import add_serve_arguments, serve_status

__all__ = ["STATUS_DESCRIPTION", "add_status_arguments", "run_status"]

STATUS_DESCRIPTION = """\
Show every route key (requests queued, the oldest one's age, requests taken not yet accepted,
workers, in flight against concurrency, saturation, served, failures by cause), every worker
and edge alive (host, pid, figures, up time, version), and the channel layer's deepest channels
and largest groups. Read-only: a few pipelined reads and a bounded SCAN per Redis server
(docs/status.rst says what each figure means)."""

# A read that takes longer than this is given up (and, under --watch, tried again).
_TIMEOUT = 10.0
# How long a server may take to (re)connect before a read says Redis does not answer.
_RETRY_WINDOW = 3.0
_HOME_AND_CLEAR = "\x1b[H\x1b[2J"


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags both status commands take besides where Redis is."""
    parser.add_argument("--json", action="store_true",
                        help="print JSON (docs/status.rst, schema_version 1) instead of a table")
    parser.add_argument("--watch", nargs="?", type=float, const=1.0, default=None,
                        metavar="SECONDS",
                        help="read again every SECONDS (default 1) until Ctrl-C; with --json, "
                             "one JSON document per line")
    parser.add_argument("--top", type=int, default=TOP,
                        help=f"channels and groups listed, the deepest first (default {TOP})")
    parser.add_argument("--scan-limit", type=int, default=SCAN_LIMIT, metavar="KEYS",
                        help="keys the scan for channels, groups and route queues examines "
                             f"per Redis server (default {SCAN_LIMIT})")
    add_serve_arguments(parser)  # --serve, --token: status/serve.py


def run_status(hosts: Sequence[HostSpec], prefix: str, args: argparse.Namespace,
               out: TextIO | None = None) -> int:
    """Print the status as ``args`` (of ``add_status_arguments``) ask; the exit status."""
    watch = args.watch
    if watch is not None and not watch > 0:
        raise ConfigurationError("--watch", f"expected seconds above 0, got {watch:g}",
                                 "give e.g. --watch 1 (or --watch alone: every second)")
    for flag, value, least in (("--top", args.top, 0), ("--scan-limit", args.scan_limit, 1)):
        if value < least:
            raise ConfigurationError(flag, f"expected a whole number from {least}, got {value}",
                                     f"give e.g. {flag} {TOP if flag == '--top' else SCAN_LIMIT}")
    if args.serve is not None:
        return serve_status(lambda: Topology(hosts, _RETRY_WINDOW), prefix, args,
                            out or sys.stdout)
    if args.token is not None:
        raise ConfigurationError("--token", "only --serve takes a token",
                                 "add --serve HOST:PORT, or leave --token out")
    try:
        return asyncio.run(_run(hosts, prefix, args, out or sys.stdout))
    except KeyboardInterrupt:  # how a watch ends
        return 0


async def _run(hosts: Sequence[HostSpec], prefix: str, args: argparse.Namespace,
               out: TextIO) -> int:
    topology = Topology(hosts, _RETRY_WINDOW)
    redraw = args.watch is not None and not args.json and out.isatty()
    try:
        while True:
            started = time.monotonic()
            try:
                status = await asyncio.wait_for(
                    collect(topology, prefix, top=args.top, scan_limit=args.scan_limit),
                    _TIMEOUT)
            except (RedisUnavailable, ReplyError, asyncio.TimeoutError) as exc:
                problem = f"cannot read the status from Redis: {exc or 'timed out'}"
                if args.watch is None:
                    print(f"channels-distributed status: {problem}", file=sys.stderr)
                    return 1
                _show(out, None, problem, args, redraw)
            else:
                _show(out, status, "", args, redraw)
            if args.watch is None:
                return 0
            await asyncio.sleep(max(0.0, args.watch - (time.monotonic() - started)))
    finally:
        await topology.close()


def _show(out: TextIO, status: dict[str, Any] | None, problem: str, args: argparse.Namespace,
          redraw: bool) -> None:
    if args.json:
        if status is None:  # the JSON lines stay documents of the schema: the problem aside
            print(f"channels-distributed status: {problem}", file=sys.stderr, flush=True)
            return
        text = json.dumps(status, separators=(",", ":")) + "\n"
    elif status is None:
        text = f"{time.strftime('%H:%M:%S')} {problem}\n"
    else:
        text = render(status)
    if redraw:
        text = _HOME_AND_CLEAR + text + f"\n(every {args.watch:g} s; Ctrl-C to stop)\n"
    elif args.watch is not None and not args.json:
        text += "\n"  # one table after the other in a file or a pipe
    out.write(text)
    out.flush()
