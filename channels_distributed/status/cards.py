"""The cards of live processes, read for ``channels-distributed status``.

Every edge and worker writes its card (JSON, ``<prefix>:{p:<id>}:card``, expiring with its
lease) and its id in the directory (``<prefix>:directory``, a sorted set scored by when the card
was written) once a second. A reader takes the directory's members and GETs their cards, one
pipeline per server: a member whose card is gone is a process that is gone.

A card is what another process wrote, maybe another version of the package: every field is
read for the type it should have, and a field missing or of another type reads as zero or empty
(never an error), so that one odd card cannot hide the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..protocol.keys import DistKeys
from ..protocol.spread import MARK, MAX_SPREAD
from ..transport.topology import Topology
from .reads import pipelined

__all__ = ["Card", "as_float", "as_int", "as_str", "card_routes", "counts", "edge_entry",
           "read_cards", "route_counts", "spread_of", "worker_entry"]

logger = logging.getLogger(__name__)

#: A process's card, as it wrote it.
Card = Mapping[str, Any]


async def read_cards(topology: Topology, keys: DistKeys) -> list[Card]:
    """The cards of the processes alive now, in the directory's order."""
    directory = keys.directory()
    [members] = await pipelined(topology, [(directory, ("ZRANGE", directory, 0, -1))], "ZRANGE")
    ids = [member.decode(errors="replace") for member in members]
    if not ids:
        return []
    cards = [keys.card(process) for process in ids]
    raw = await pipelined(topology, [(card, ("GET", card)) for card in cards], "GET")
    found: list[Card] = []
    for process, value in zip(ids, raw):
        if value is None:
            continue  # the process is gone: its card expired with its lease
        try:
            card = json.loads(value)
        except ValueError:
            card = None
        if not isinstance(card, dict):
            logger.debug("the card of %s is not a JSON object: %r", process, value[:100])
            continue
        card.setdefault("id", process)
        found.append(card)
    return found


def as_int(card: Card, name: str) -> int:
    value = card.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_float(card: Card, name: str) -> float:
    value = card.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0


def as_str(card: Card, name: str) -> str:
    value = card.get(name)
    return value if isinstance(value, str) else ""


def counts(value: object) -> dict[str, int]:
    """A ``{cause: count}`` map of a card, its odd entries left out."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def route_counts(card: Card, route: str) -> Card:
    """The card's figures for one route key (empty when it has none)."""
    routes = card.get("routes")
    found = routes.get(route) if isinstance(routes, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def card_routes(card: Card) -> list[str]:
    routes = card.get("routes")
    return [str(key) for key in routes] if isinstance(routes, Mapping) else []


def spread_of(card: Card) -> dict[str, int]:
    """The route keys an edge's card says it spreads, and over how many sub-queues: only the
    spreads an edge can apply (2 to ``MAX_SPREAD``), so that an odd card names no sub-queue a
    status would then read."""
    spread = card.get("spread")
    if not isinstance(spread, Mapping):
        return {}
    return {str(key): n for key, n in sorted(spread.items()) if MARK not in str(key)
            and isinstance(n, int) and not isinstance(n, bool) and 1 < n <= MAX_SPREAD}


def _process(card: Card, now: float) -> dict[str, Any]:
    started = as_float(card, "started")
    return {"id": as_str(card, "id"), "host": as_str(card, "host"), "pid": as_int(card, "pid"),
            "started": started, "up_s": round(max(0.0, now - started), 3) if started else 0.0,
            "version": as_str(card, "version"), "protocol": as_int(card, "protocol"),
            "build": as_str(card, "build"), "state": as_str(card, "state")}


def worker_entry(card: Card, now: float, route: str) -> dict[str, Any]:
    """A worker as a route lists it: its figures on that route key, its whole concurrency."""
    mine = route_counts(card, route)
    entry = _process(card, now)
    entry.update(concurrency=as_int(card, "concurrency"), in_flight=as_int(mine, "in_flight"),
                 served=as_int(mine, "served"), errors=as_int(mine, "errors"))
    return entry


def edge_entry(card: Card, now: float) -> dict[str, Any]:
    entry = _process(card, now)
    overrides = card.get("overrides")
    entry.update(open=as_int(card, "open"), requests=as_int(card, "requests"),
                 served=as_int(card, "served"), failures=counts(card.get("failures")),
                 routes_version=as_int(card, "routes_version"),
                 overrides={str(k): str(v) for k, v in overrides.items()}
                 if isinstance(overrides, dict) else {}, spread=spread_of(card))
    return entry
