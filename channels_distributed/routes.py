"""What ``channels-distributed routes`` and ``manage.py distributed_routes`` both do: show the
routes in force, and change the route overrides every edge applies (docs/routes.rst).

::

    routes                               the settings' routes, the overrides, what each edge applies
    routes set KEY api=95,api-v2=5       split KEY's new requests by weight
    routes switch KEY OTHER              send KEY's new requests to OTHER
    routes drain KEY [--into OTHER]      no new request on KEY; its queued ones move (or end 503)
    routes clear KEY | --all             back to the settings' routes

A change is checked first (an override the edges would refuse is refused here, exit status 2),
then written over the document read, with its version raised by one
(``transport/overrides.py``); it is then shown as the edges will apply it (within a second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .conf.hosts import HostSpec
from .exceptions import RedisUnavailable, ReplyError
from .protocol.keys import DistKeys
from .protocol.overrides import OverrideError, RouteOverrides, new_override, parse_document
from .status.cards import Card, as_int, as_str, read_cards
from .transport.overrides import change_overrides, read_overrides
from .transport.topology import Topology

__all__ = ["ROUTES_DESCRIPTION", "add_routes_arguments", "run_routes"]

ROUTES_DESCRIPTION = """\
Show the routes in force (the settings' routes as the edges report them, the route overrides
stored in Redis, and which version of them each edge applies), or change the overrides: a split
of a route key's new requests over several keys by weight (set KEY api=95,api-v2=5), a switch
to another key (switch KEY OTHER), a drain (drain KEY [--into OTHER]: no new request is queued
on KEY, its queued ones move to OTHER or end 503), or back to the settings (clear KEY, clear
--all). Every edge applies a change within a second, without a restart (docs/routes.rst)."""

_TIMEOUT = 10.0
_RETRY_WINDOW = 3.0


def add_routes_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions and flags both routes commands take besides where Redis is."""
    parser.add_argument("--json", action="store_true", help="print the routes as JSON")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    split = actions.add_parser("set", help="split a key's new requests by weight")
    split.add_argument("key", metavar="KEY")
    split.add_argument("weights", metavar="WEIGHTS", help="key=weight,... e.g. api=95,api-v2=5")
    switch = actions.add_parser("switch", help="send a key's new requests to another key")
    switch.add_argument("key", metavar="KEY")
    switch.add_argument("into", metavar="OTHER")
    drain = actions.add_parser("drain", help="queue nothing more on a key; move its queued "
                               "requests to --into (else they end 503)")
    drain.add_argument("key", metavar="KEY")
    drain.add_argument("--into", default=None, metavar="OTHER")
    clear = actions.add_parser("clear", help="back to the settings' routes for a key (or all)")
    clear.add_argument("key", metavar="KEY", nargs="?")
    clear.add_argument("--all", action="store_true", help="clear every override")
    for sub in (split, switch, drain, clear):
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="print the routes as JSON")


def _change(args: argparse.Namespace) -> tuple[Any, bool, tuple[str, ...]] | None:
    """The change the action asks for (document, who, when -> next), checked now; whether it
    may replace a document the edges refuse; the keys it sends requests to. None: only show."""
    action = args.action
    if action is None:
        return None
    if action == "clear":
        if args.all == (args.key is not None):
            raise OverrideError("clear takes a route key, or --all (not both)")
        if args.all:
            return (lambda doc, by, at: doc.cleared(by, at)), True, ()
        key = args.key
        return (lambda doc, by, at: doc.changed(key, None, by, at)), False, (key,)
    argument = {"set": "weights", "switch": "into", "drain": "into"}[action]
    override = new_override(args.key, "split" if action == "set" else action,
                            getattr(args, argument))
    key = args.key
    return (lambda doc, by, at: doc.changed(key, override, by, at)), False, override.targets()


def run_routes(hosts: Sequence[HostSpec], prefix: str, args: argparse.Namespace,
               out: TextIO | None = None, settings_routes: Sequence[Sequence[str]] | None = None
               ) -> int:
    """Change the overrides as ``args`` ask, then print the routes; the exit status (2: a
    change refused, 1: Redis did not answer)."""
    out = out or sys.stdout
    try:
        change = _change(args)
    except OverrideError as exc:
        print(f"channels-distributed routes: refused: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(asyncio.wait_for(
            _run(hosts, prefix, change, args.json, out, settings_routes), _TIMEOUT))
    except OverrideError as exc:
        print(f"channels-distributed routes: refused: {exc}", file=sys.stderr)
        return 2
    except (RedisUnavailable, ReplyError, asyncio.TimeoutError) as exc:
        print(f"channels-distributed routes: cannot reach Redis: {exc or 'timed out'}",
              file=sys.stderr)
        return 1


async def _run(hosts: Sequence[HostSpec], prefix: str,
               change: tuple[Any, bool, tuple[str, ...]] | None,
               as_json: bool, out: TextIO, settings_routes: Sequence[Sequence[str]] | None
               ) -> int:
    keys = DistKeys(prefix)
    topology = Topology(hosts, _RETRY_WINDOW)
    try:
        shard = topology.shard_for(keys.routes())
        if change is not None:
            written = await change_overrides(shard, keys.routes(), change[0], repair=change[1])
            print(f"route overrides: version {written.version} written", file=sys.stderr)
            await _warn_unserved(topology, keys, change[2])
        raw = await read_overrides(shard, keys.routes())
        edges = [card for card in await read_cards(topology, keys)
                 if card.get("side") == "edge"]
    finally:
        await topology.close()
    shown = _shown(raw, edges, settings_routes)
    out.write(json.dumps(shown, indent=2) + "\n" if as_json else _render(shown))
    out.flush()
    return 0


async def _warn_unserved(topology: Topology, keys: DistKeys, targets: Sequence[str]) -> None:
    """Say which keys the change sends requests to that no worker serves now: the change
    stands (workers may be on their way), but those requests would wait and end 503."""
    for key in dict.fromkeys(targets):
        registry = keys.registry(key)
        try:
            link = await topology.shard_for(registry).link()
            registered = await link.call("SCARD", registry)
        except (RedisUnavailable, ReplyError):  # a warning only: the change is written
            continue
        if not registered:
            print(f"warning: no worker is registered for route key {key}: its requests wait "
                  f"and end 503 until one starts (channels-distributed worker {key} ...)",
                  file=sys.stderr)


def _shown(raw: bytes | None, edges: list[Card],
           settings_routes: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """What the command prints (the JSON form; docs/routes.rst)."""
    refused = None
    try:
        document: RouteOverrides | None = parse_document(raw)
    except OverrideError as exc:
        document, refused = None, str(exc)
    if settings_routes is None:  # as the edges report them (each edge its own settings)
        tables = {json.dumps(card.get("settings_routes") or []) for card in edges}
        settings_routes = json.loads(min(tables)) if len(tables) == 1 else None
    return {
        "settings_routes": [list(pair) for pair in settings_routes or []],
        "overrides": None if document is None else document.as_json(),
        "refused": refused,
        "edges": [{"id": as_str(card, "id"), "host": as_str(card, "host"),
                   "pid": as_int(card, "pid"), "routes_version": as_int(card, "routes_version"),
                   "overrides": card.get("overrides") if isinstance(card.get("overrides"), dict)
                   else {}} for card in edges],
    }


def _render(shown: dict[str, Any]) -> str:
    lines = ["ROUTES (settings; the first whose regex is found in the path)"]
    lines += [f"  {pattern!s:<30} -> {template}" for pattern, template in shown["settings_routes"]]
    if not shown["settings_routes"]:
        lines.append("  (no edge is running)" if not shown["edges"] else
                     "  (the edges' settings differ: see each edge's card, status --json)")
    document, refused = shown["overrides"], shown["refused"]
    if refused is not None:
        lines += ["", f"OVERRIDES: REFUSED by the edges ({refused}); they keep the last good "
                  "ones. Replace them: routes clear --all"]
    elif not document["overrides"]:
        lines += ["", f"OVERRIDES: none (version {document['version']})"]
    else:
        lines += ["", f"OVERRIDES: version {document['version']}, by {document['by']} at "
                  f"{_when(document['at'])}"]
        rows = [(key, _describe(next(k for k in ("split", "switch", "drain") if k in o), o),
                 f"(by {o['by']} at {_when(o['at'])})")
                for key, o in document["overrides"].items()]
        width = max(len(what) for _, what, _ in rows)
        lines += [f"  {key:<20} {what:<{width}}  {by}" for key, what, by in rows]
    edges = shown["edges"]
    version = None if document is None else document["version"]
    behind = [edge for edge in edges if edge["routes_version"] != version]
    lines += ["", f"EDGES: {len(edges) - len(behind)} of {len(edges)} apply version {version}"
              if edges else "EDGES: none running"]
    lines += [f"  {edge['host']} pid {edge['pid']}: version {edge['routes_version']}"
              for edge in behind]
    return "\n".join(lines) + "\n"


def _describe(kind: str, override: dict[str, Any]) -> str:
    value = override[kind]
    if kind == "split":
        return "split " + ",".join(f"{k}={w}" for k, w in value.items())
    if kind == "switch":
        return f"switch to {value}"
    return f"drain into {value}" if value else "drain (new and queued requests: 503)"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "?"
