"""What a process tells operators about itself: counters kept in memory, published as a card.

Every edge and worker keeps a few counters (connections in flight, served, failed by cause) in
plain attributes, bumped on the request path without any I/O, and writes them as its *card*
(``<prefix>:{p:<id>}:card``, JSON) with its lease refresh, once a second
(``transport.liveness.Presence``). ``channels-distributed status`` reads the cards; a card
expires with its process's lease. The card's fields are documented in docs/status.rst.

Why an edge refused or failed a connection is one of ``CAUSES``; ``STATUS_OF`` says what its
client got.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from .compiled import compiled_modules
from .protocol.envelope import VERSION
from .version import __version__

__all__ = [
    "CAUSES",
    "STATUS_OF",
    "EdgeFigures",
    "Figures",
    "RouteCounts",
    "WorkerFigures",
    "host_name",
]

#: Why an edge did not get a connection served, and the HTTP status its client got (a WebSocket
#: is closed with 1013 for the 503s and 1011 for worker_lost).
STATUS_OF = {
    "no_worker": 503,  # no worker registered for the route key
    "busy": 503,  # workers registered, none took the request before its deadline
    "queue_full": 503,  # the route's queue held queue_capacity requests
    "redis": 503,  # Redis unreachable (or refusing) when queueing
    "drained": 503,  # the route key is drained with nowhere to go (``channels-distributed routes``)
    "worker_lost": 502,  # the worker died or went silent after taking it
}
CAUSES = tuple(STATUS_OF)

_HOST_CHARACTERS = re.compile(r"[^A-Za-z0-9.-]+")


def host_name() -> str:
    """This machine's name as it goes into process ids: keys and channel names accept only
    some characters, and ids must stay short."""
    return _HOST_CHARACTERS.sub("-", socket.gethostname())[:40].strip("-") or "host"


def _build() -> str:
    return "compiled" if compiled_modules() else "python"


@dataclass
class Figures:
    """What every process publishes: who and where it is, and its state."""

    id: str
    side: str  # "worker" or "edge"
    state: str = "starting"  # then "serving", "draining"
    started: float = field(default_factory=time.time)

    def card(self) -> dict[str, Any]:
        return {"id": self.id, "side": self.side, "host": host_name(), "pid": os.getpid(),
                "version": __version__, "protocol": VERSION, "build": _build(),
                "python": platform.python_version(), "started": round(self.started, 3),
                "at": round(time.time(), 3), "state": self.state}


@dataclass
class RouteCounts:
    """One route key's counters in one process."""

    in_flight: int = 0
    requests: int = 0
    served: int = 0
    errors: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerFigures(Figures):
    """A worker's: connections in flight and served, application errors, per route key."""

    concurrency: int = 0
    channels: tuple[str, ...] = ()
    routes: dict[str, RouteCounts] = field(default_factory=dict)

    def route(self, key: str) -> RouteCounts:
        counts = self.routes.get(key)
        if counts is None:
            counts = self.routes[key] = RouteCounts()
        return counts

    def card(self) -> dict[str, Any]:
        card = super().card()
        routes = self.routes.items()
        card.update(
            concurrency=self.concurrency, channels=list(self.channels),
            in_flight=sum(c.in_flight for _, c in routes),
            served=sum(c.served for _, c in routes), errors=sum(c.errors for _, c in routes),
            routes={k: {"in_flight": c.in_flight, "served": c.served, "errors": c.errors}
                    for k, c in routes})
        return card


@dataclass
class EdgeFigures(Figures):
    """An edge's: connections open, requests per route key, and failures by cause."""

    worker_timeout: float = 0.0
    open: int = 0
    routes: dict[str, RouteCounts] = field(default_factory=dict)
    routes_version: int = 0  # the route overrides in force (distributor/overrides.py)
    overrides: dict[str, str] = field(default_factory=dict)  # route key -> its override
    settings_routes: list[list[str]] = field(default_factory=list)  # (regex, key template)
    spread: dict[str, int] = field(default_factory=dict)  # route key -> its sub-queues, if > 1

    def route(self, key: str) -> RouteCounts:
        counts = self.routes.get(key)
        if counts is None:
            if len(self.routes) > 1000:  # route templates can expand to many keys: bounded
                self.routes.clear()
            counts = self.routes[key] = RouteCounts()
        return counts

    def failed(self, key: str, cause: str) -> int:
        """Count a failure; the number of this cause on this key so far."""
        failures = self.route(key).failures
        failures[cause] = count = failures.get(cause, 0) + 1
        return count

    def card(self) -> dict[str, Any]:
        card = super().card()
        failures: dict[str, int] = {}
        for counts in self.routes.values():
            for cause, count in counts.failures.items():
                failures[cause] = failures.get(cause, 0) + count
        card.update(
            worker_timeout=self.worker_timeout, open=self.open,
            requests=sum(c.requests for c in self.routes.values()),
            served=sum(c.served for c in self.routes.values()), failures=failures,
            routes={k: {"requests": c.requests, "served": c.served,
                        "failures": dict(c.failures)} for k, c in self.routes.items()},
            routes_version=self.routes_version, overrides=dict(self.overrides),
            settings_routes=self.settings_routes, spread=dict(self.spread))
        return card
