"""What the status page draws: per route key, samples of the queue depth, the throughput and the
failures over the last minutes, kept in the status server's memory and bounded.

``History.add`` takes each status (the ``status --json`` document) the server collects. The
processes publish counters (totals since each started); a rate is the difference between two
consecutive statuses over the time between them:

* ``requests_s``: requests the edges received for the route (the edges' ``requests``, summed);
* ``served_s``: connections the route's workers served (each worker's ``served``, by worker id:
  a worker seen for the first time adds nothing, as its total counts what it served before);
* ``e503_s`` / ``e502_s``: the edges' failures whose client got a 503 (no worker, busy, queue
  full, Redis unreachable) and a 502 (worker lost).

A sum over edges drops when an edge stops (its counters leave with its card): a difference below
zero counts as zero, so a rate never goes negative (the increments of the other edges in that one
interval are lost, once). The same clamped differences keep running totals per route that only
grow (``totals``): what ``/metrics`` exports as Prometheus counters, so that ``rate()`` does not
read an edge leaving as a counter reset.

Memory is bounded: at most ``window / interval`` (+1) samples per route and ``max_routes``
routes; a route that no status named for a whole window is forgotten.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..figures import STATUS_OF

__all__ = ["FIELDS", "WINDOW", "History", "Totals", "is_502"]

#: Seconds of history kept and drawn: five minutes.
WINDOW = 300.0
#: Routes followed at most; a status naming more leaves the extra routes out of the history.
MAX_ROUTES = 200
#: The columns of a sample, in order (``History.as_json`` gives samples as lists).
FIELDS = ("t", "queued", "requests_s", "served_s", "e503_s", "e502_s")

Sample = tuple[float, int, float | None, float | None, float | None, float | None]


@dataclass
class Totals:
    """Counters of one route that only grow: the first values seen, plus every increase since."""

    requests: int = 0
    served: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Route:
    samples: deque[Sample]
    seen: float  # ``generated_at`` of the last status that named the route
    requests: int  # the raw sums of the last status: what the next one is diffed against
    served: int
    failures: dict[str, int]
    workers: dict[str, int]  # worker id -> its served count
    totals: Totals


def is_502(cause: str) -> bool:
    """Whether the client got a 502 for ``cause`` (``figures.STATUS_OF``); the others are
    refusals, 503 (a cause newer than this package counts as one)."""
    return STATUS_OF.get(cause) == 502


def _number(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _failures(route: Mapping[str, Any]) -> dict[str, int]:
    given = route.get("failures")
    return {str(k): _number(v) for k, v in given.items()} if isinstance(given, Mapping) else {}


def _workers(route: Mapping[str, Any]) -> dict[str, int]:
    given = route.get("workers")
    if not isinstance(given, list):
        return {}
    return {str(w.get("id")): _number(w.get("served")) for w in given if isinstance(w, Mapping)}


def _rate(count: float, elapsed: float) -> float:
    return round(count / elapsed, 3)


class History:
    """Samples of every route over the last ``window`` seconds, one per status added."""

    def __init__(self, window: float = WINDOW, interval: float = 1.0,
                 max_routes: int = MAX_ROUTES) -> None:
        self.window = window
        self.interval = interval
        self.max_routes = max_routes
        self._length = math.ceil(window / interval) + 1
        self._routes: dict[str, _Route] = {}
        #: Routes of the last status left out: ``max_routes`` were followed already.
        self.left_out: set[str] = set()

    def add(self, status: Mapping[str, Any]) -> None:
        """Add a sample per route of ``status`` (``generated_at`` is its time)."""
        now = float(status.get("generated_at") or 0.0)
        self.left_out = set()  # of this status only: bounded by what one status names
        routes = status.get("routes")
        for key, route in (routes.items() if isinstance(routes, Mapping) else ()):
            if isinstance(route, Mapping):
                self._add_route(str(key), route, now)
        self._forget(now)

    def _add_route(self, key: str, route: Mapping[str, Any], now: float) -> None:
        requests, served = _number(route.get("requests")), _number(route.get("served"))
        failures, workers = _failures(route), _workers(route)
        queued = _number(route.get("queued"))
        known = self._routes.get(key)
        if known is None:
            if len(self._routes) >= self.max_routes:
                self.left_out.add(key)
                return
            known = self._routes[key] = _Route(
                deque(maxlen=self._length), now, requests, served, failures, workers,
                Totals(requests, served, dict(failures)))
            known.samples.append((now, queued, None, None, None, None))
            return
        elapsed = now - known.seen
        if elapsed <= 0:
            return  # the same status twice, or a clock that went back: no rate to tell
        grew = {cause: max(0, count - known.failures.get(cause, 0))
                for cause, count in failures.items()}
        more_requests = max(0, requests - known.requests)
        finished = sum(max(0, count - known.workers[wid])
                       for wid, count in workers.items() if wid in known.workers)
        e502 = sum(n for cause, n in grew.items() if is_502(cause))
        e503 = sum(grew.values()) - e502
        known.samples.append((now, queued, _rate(more_requests, elapsed),
                              _rate(finished, elapsed), _rate(e503, elapsed),
                              _rate(e502, elapsed)))
        totals = known.totals
        totals.requests += more_requests
        totals.served += max(0, served - known.served)
        for cause, n in grew.items():
            totals.failures[cause] = totals.failures.get(cause, 0) + n
        known.seen, known.requests, known.served = now, requests, served
        known.failures, known.workers = failures, workers

    def _forget(self, now: float) -> None:
        """Drop samples older than the window, and routes left with none."""
        oldest = now - self.window
        for key in list(self._routes):
            samples = self._routes[key].samples
            while samples and samples[0][0] < oldest:
                samples.popleft()
            if not samples:
                del self._routes[key]

    def totals(self) -> dict[str, Totals]:
        """The growing counters of each route followed."""
        return {key: route.totals for key, route in self._routes.items()}

    def as_json(self, since: float | None = None) -> dict[str, Any]:
        """The history as the page reads it: each route's samples as lists of ``FIELDS``; with
        ``since``, only the samples taken after that time (a page that has the rest)."""
        def rows(route: _Route) -> list[list[float | int | None]]:
            return [list(sample) for sample in route.samples
                    if since is None or sample[0] > since]

        return {"window_s": self.window, "interval_s": self.interval, "fields": list(FIELDS),
                "routes": {key: rows(route) for key, route in sorted(self._routes.items())},
                "left_out": sorted(self.left_out)}
