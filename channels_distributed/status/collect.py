"""``collect()``: every route key, worker and edge, and the layer's deepest queues, as one dict.

The dict is what ``channels-distributed status --json`` prints; its shape is ``schema.json``
(``schema_version`` 1: fields are only ever added to it) and docs/status.rst says what each
field means. Reading it costs a few pipelined round trips (``reads.py``):

1. the directory and the cards of live processes (``cards.py``), and the bounded SCAN of every
   server, at once;
2. per route key, on its server: the queue's length and oldest entry, the registered workers;
   and the length of each channel and group the scan found;
3. per route key, the requests each of its workers took and has not accepted yet.

Route keys are those the live workers' and edges' cards name, those whose queue the scan found
(a queue nobody serves, that no live edge fills any more), and those whose registry the scan
found with a live worker in it (a worker lists a route key in its card once it took a request
there: before that, its registration says it serves the key).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..exceptions import ConfigurationError
from ..protocol.keys import DistKeys
from ..protocol.spread import MARK, logical_key, sub_queues
from ..transport.topology import Shard, Topology
from .cards import (
    Card,
    as_float,
    as_int,
    card_routes,
    counts,
    edge_entry,
    read_cards,
    route_counts,
    spread_of,
    worker_entry,
)
from .reads import Scanned, pipelined, scan

__all__ = ["SCAN_LIMIT", "SCHEMA_VERSION", "TOP", "collect"]

SCHEMA_VERSION = 1
#: Keys the SCAN examines per server per call, by default: a fraction of a millisecond of each
#: server's time per thousand (docs/status.rst has the figures).
SCAN_LIMIT = 10_000
#: Channels and groups listed, by default (the deepest).
TOP = 10
# An entry queued by an edge that did not stamp it ("q"): its deadline minus this (the default
# worker_timeout), unless the card of the edge that queued it says its own timeout.
_DEFAULT_TIMEOUT = 5.0


async def collect(topology: Topology, prefix: str, *, top: int = TOP,
                  scan_limit: int = SCAN_LIMIT) -> dict[str, Any]:
    """The status of the deployment under ``prefix``: ``schema.json``'s shape. Read-only."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ConfigurationError("top", f"expected a whole number from 0, got {top!r}",
                                 "give how many channels and groups to list, e.g. 10")
    if isinstance(scan_limit, bool) or not isinstance(scan_limit, int) or scan_limit < 1:
        raise ConfigurationError("scan_limit", f"expected a whole number from 1, got "
                                 f"{scan_limit!r}", f"give e.g. {SCAN_LIMIT}")
    keys = DistKeys(prefix)
    cards, scanned = await asyncio.gather(read_cards(topology, keys),
                                          scan(topology, prefix, scan_limit))
    workers = [card for card in cards if card.get("side") == "worker"]
    edges = [card for card in cards if card.get("side") == "edge"]
    found = _classify(prefix, scanned)
    spreads = [spread_of(card) for card in edges]
    _add_spread(found.spread, spreads)
    named = {*found.queues, *(route for card in cards for route in card_routes(card)),
             *(route for spread in spreads for route in spread)}
    names = sorted(named | found.registries)
    queues, layer = await asyncio.gather(_queues(topology, keys, names, workers, found.spread),
                                         _layer(topology, found, top))
    live = {card.get("id") for card in workers}
    names = [name for name in names if name in named or queues[name].registered & live]
    now = time.time()
    timeouts = {card.get("id"): as_float(card, "worker_timeout") for card in edges}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": round(now, 3),
        "prefix": prefix,
        "routes": {name: {**_route(name, queues[name], workers, edges, timeouts, now),
                          "spread": _spread(name, edges, spreads)} for name in names},
        "edges": sorted((edge_entry(card, now) for card in edges), key=_by_place),
        "layer": {**layer, "scanned": scanned.count, "complete": scanned.complete},
    }


@dataclass
class _Found:
    """What the scanned keys are: route queues and registries, channels and groups (name ->
    the key and the server it was found on)."""

    queues: set[str] = field(default_factory=set)
    registries: set[str] = field(default_factory=set)
    channels: dict[str, tuple[str, Shard]] = field(default_factory=dict)
    groups: dict[str, tuple[str, Shard]] = field(default_factory=dict)
    #: The sub-queues of spread route keys (protocol/spread.py), by route key: read with it.
    spread: dict[str, set[str]] = field(default_factory=dict)


def _classify(prefix: str, scanned: Scanned) -> _Found:
    found = _Found()
    start = len(prefix) + 1  # "<prefix>:"
    for shard, keys in scanned.keys.items():
        for key in keys:
            # String tests, not a regular expression: a status may look at many thousands.
            rest = key[start:]
            if rest.startswith("{rt:"):
                route, _, kind = rest[4:].rpartition("}:")
                if MARK in route and kind in ("q", "w"):  # a spread route's sub-queue
                    found.spread.setdefault(logical_key(route), set()).add(route)
                    route = logical_key(route)
                if kind == "q":
                    found.queues.add(route)
                elif kind == "w":
                    found.registries.add(route)
                continue  # a request taken, the reaper's lock...
            kind = rest[1:3]
            name = rest[3:-1]
            if rest[:1] != "{" or rest[-1:] != "}" or "{" in name or "}" in name:
                continue  # a process's inbox, lease or card...
            if kind == "g:":
                found.groups[name] = key, shard
            elif kind == "c:":
                found.channels[name] = key, shard
            elif kind == "i:":  # the process-local channels of an owner wait in one list
                found.channels[f"{name}!"] = key, shard
    return found


def _add_spread(found: dict[str, set[str]], spreads: Iterable[dict[str, int]]) -> None:
    """Add the sub-queues the edges' cards say they spread over to those the scan found: a
    limited scan may miss some, and their requests are the route's all the same."""
    for spread in spreads:
        for route, n in spread.items():
            found.setdefault(route, set()).update(sub_queues(route, n)[1:])


def _spread(name: str, edges: Sequence[Card], spreads: Sequence[dict[str, int]]) -> list[int]:
    """The sub-queue counts the edges that queue route ``name`` use, most first; empty when
    none spreads it. An edge queues the key if it spreads it or counted requests of it (1: not
    spread there); an edge that never saw the key says nothing of it."""
    used = {spread.get(name) or 1 for card, spread in zip(edges, spreads)
            if name in spread or name in card_routes(card)}
    return sorted(used, reverse=True) if any(n > 1 for n in used) else []


@dataclass
class _Queue:
    """A route key's figures read from Redis."""

    queued: int = 0
    heads: list[bytes] = field(default_factory=list)  # the oldest entry (of each sub-queue)
    registered: frozenset[str] = frozenset()
    taken: int = 0


async def _queues(topology: Topology, keys: DistKeys, names: Sequence[str],
                  workers: Sequence[Card], spread: dict[str, set[str]]) -> dict[str, _Queue]:
    # A spread route key is read with its sub-queues, as one route.
    parts = [(name, part) for name in names for part in [name, *sorted(spread.get(name, ()))]]
    first = []
    for _, part in parts:
        queue, registry = keys.queue(part), keys.registry(part)
        first += [(queue, ("LLEN", queue)), (queue, ("LINDEX", queue, 0)),
                  (registry, ("SMEMBERS", registry))]
    replies = await pipelined(topology, first, "LLEN, LINDEX, SMEMBERS")
    found = {name: _Queue() for name in names}
    for index, (name, _) in enumerate(parts):
        queued, head, members = replies[3 * index: 3 * index + 3]
        route = found[name]
        route.queued += int(queued)
        route.heads += [head] if head is not None else []
        route.registered |= {member.decode(errors="replace") for member in members}
    # Taken and not yet accepted: in each worker's processing list of the route. Registered
    # workers that are gone still count (until the reaper gives their requests back).
    second = []
    for name, part in parts:
        ids = found[name].registered | {str(card.get("id")) for card in workers
                                        if name in card_routes(card)}
        second += [(name, keys.processing(part, worker)) for worker in sorted(ids)]
    lengths = await pipelined(topology, [(key, ("LLEN", key)) for _, key in second], "LLEN")
    for (name, _), length in zip(second, lengths):
        found[name].taken += int(length)
    return found


def _route(name: str, queue: _Queue, workers: Iterable[Card], edges: Sequence[Card],
           timeouts: dict[Any, float], now: float) -> dict[str, Any]:
    serving = [card for card in workers
               if name in card_routes(card) or card.get("id") in queue.registered]
    entries = sorted((worker_entry(card, now, name) for card in serving), key=_by_place)
    # A draining worker takes nothing new: its slots are not capacity any more.
    concurrency = sum(e["concurrency"] for e in entries if e["state"] != "draining")
    in_flight = sum(e["in_flight"] for e in entries)
    failures: dict[str, int] = {}
    requests = served = 0
    for edge in edges:
        mine = route_counts(edge, name)
        requests += as_int(mine, "requests")
        served += as_int(mine, "served")
        for cause, count in counts(mine.get("failures")).items():
            failures[cause] = failures.get(cause, 0) + count
    return {
        "queued": queue.queued,
        "oldest_s": max((a for a in (_age(h, timeouts, now) for h in queue.heads)
                         if a is not None), default=None),
        "taken": queue.taken,
        "workers": entries,
        "concurrency": concurrency,
        "in_flight": in_flight,
        "saturation": round((queue.queued + in_flight) / (concurrency or 1), 3),
        "requests": requests,
        "served": served,
        "failures": dict(sorted(failures.items())),
    }


def _age(entry: bytes | None, timeouts: dict[Any, float], now: float) -> float | None:
    """How long the oldest request has waited, in seconds (None: the queue is empty)."""
    if entry is None:
        return None
    try:
        fields = msgpack.unpackb(entry, raw=False, strict_map_key=False)
    except Exception:
        fields = None
    if not isinstance(fields, dict):
        return None
    stamp, deadline = fields.get("q"), fields.get("d")
    if isinstance(stamp, int) and stamp > 0:  # (0: an entry packed without its time)
        queued = stamp / 1000
    elif isinstance(deadline, int):
        queued = deadline / 1000 - (timeouts.get(fields.get("o")) or _DEFAULT_TIMEOUT)
    else:
        return None
    return round(max(0.0, now - queued), 3)


async def _layer(topology: Topology, found: _Found, top: int) -> dict[str, Any]:
    if not top:  # nothing to list: nothing to read (the scan alone costs Redis little)
        return {"channels": [], "groups": []}
    channels, groups = list(found.channels.items()), list(found.groups.items())
    commands = [(key, ("LLEN", key)) for _, (key, _) in channels]
    commands += [(key, ("ZCARD", key)) for _, (key, _) in groups]
    where = [shard for _, (_, shard) in (*channels, *groups)]
    sizes = [int(n) for n in await pipelined(topology, commands, "LLEN, ZCARD", where)]
    deepest = _deepest(zip((name for name, _ in channels), sizes), top)
    largest = _deepest(zip((name for name, _ in groups), sizes[len(channels):]), top)
    return {"channels": [{"name": name, "queued": size} for name, size in deepest],
            "groups": [{"name": name, "members": size} for name, size in largest]}


def _deepest(sizes: Iterable[tuple[str, int]], top: int) -> list[tuple[str, int]]:
    # A list emptied since the scan is gone: not listed.
    return heapq.nsmallest(top, ((n, s) for n, s in sizes if s),
                           key=lambda item: (-item[1], item[0]))


def _by_place(entry: dict[str, Any]) -> tuple[str, int, str]:
    return entry["host"], entry["pid"], entry["id"]
