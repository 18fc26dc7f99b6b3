"""A worker's metrics, served at ``/metrics`` on its ``--metrics-bind`` (``endpoints.py``).

In flight, served and application errors per route key are the worker's figures
(``figures.WorkerFigures``, kept for its card anyway), read when Prometheus scrapes: they cost
the request path nothing more. The take latency is observed as each request is taken: how long
it waited between the edge queueing it (the connect entry's ``q``, unix ms on the edge's clock)
and this worker taking it (this machine's clock), so it carries the clock difference between
the two machines (NTP keeps it to milliseconds); a negative difference counts as 0.

A worker's figures are its own (each worker process has its own ``--metrics-bind``): it refuses
``PROMETHEUS_MULTIPROC_DIR``, which would write them into a gunicorn edge's directory, where
that edge would sum them into its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..endpoints import Reply
from ..figures import WorkerFigures
from . import switch_on
from .exposition import CONTENT_TYPE, render
from .families import PREFIX, REGISTRY, WAIT_BUCKETS
from .pending import PendingHistogram, on_flush

__all__ = ["WorkerMeter", "worker_meter"]


class _Figures(Collector):
    """The figures of the workers of this process, summed per route key (one, but for tests
    and programs that run several ``Node``\\ s in one process)."""

    def __init__(self) -> None:
        self.watched: list[WorkerFigures] = []

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(f"{PREFIX}worker_in_flight", "Connections the worker "
                                      "runs now, by route key", labels=["route"])
        served = CounterMetricFamily(f"{PREFIX}worker_served", "Connections the worker ran "
                                     "the application for, by route key (those that raised "
                                     "included)", labels=["route"])
        errors = CounterMetricFamily(f"{PREFIX}worker_errors", "Connections whose application "
                                     "raised, by route key", labels=["route"])
        concurrency = GaugeMetricFamily(f"{PREFIX}worker_concurrency", "Connections the worker "
                                        "runs at most at once (--concurrency)")
        totals: dict[str, list[int]] = {}
        for figures in self.watched:  # every route key from the start: 0, not "no data"
            for key, counts in list(figures.routes.items()):
                total = totals.setdefault(key, [0, 0, 0])
                total[0] += counts.in_flight
                total[1] += counts.served
                total[2] += counts.errors
        for key, (running, done, failed) in sorted(totals.items()):
            in_flight.add_metric([key], running)
            served.add_metric([key], done)
            errors.add_metric([key], failed)
        concurrency.add_metric([], sum(figures.concurrency for figures in self.watched))
        yield from (in_flight, served, errors, concurrency)


class WorkerMeter:
    """This process's worker metrics."""

    def __init__(self, collector: _Figures, take: Any) -> None:
        self._collector = collector
        self._take = take
        self._routes: dict[str, PendingHistogram] = {}

    def watch(self, figures: WorkerFigures) -> None:
        """Report ``figures`` (a serving ``Node``'s, its route keys listed) until ``forget``."""
        self._collector.watched.append(figures)
        for key in figures.routes:
            self.route(key)

    def forget(self, figures: WorkerFigures) -> None:
        self._collector.watched = [w for w in self._collector.watched if w is not figures]

    def route(self, key: str) -> PendingHistogram:
        take = self._routes.get(key)
        if take is None:
            take = self._routes[key] = PendingHistogram(self._take.labels(key), WAIT_BUCKETS)
        return take

    def taken(self, key: str, waited_ms: int) -> None:
        """A request of route ``key`` taken ``waited_ms`` after the edge queued it."""
        self.route(key).observe(waited_ms / 1000 if waited_ms > 0 else 0.0)

    def flush(self) -> None:
        for take in self._routes.values():
            take.flush()

    def page(self) -> Reply:
        """``GET /metrics`` (its own figures, flushed first: one process, nothing behind)."""
        return 200, CONTENT_TYPE, render(every_process=False)


# Registered once per process, when metrics are first switched on for a worker.
_FIGURES = _Figures()
REGISTRY.register(_FIGURES)
TAKE_LATENCY = Histogram(f"{PREFIX}worker_take_latency_seconds", "Seconds from the edge "
                         "queueing a request until a worker took it, by route key", ["route"],
                         registry=REGISTRY, buckets=WAIT_BUCKETS)
_meter: WorkerMeter | None = None


def worker_meter() -> WorkerMeter:
    """This process's worker metrics, switched on the first time (a ConfigurationError naming
    the setting when they cannot be: ``metrics.switch_on``)."""
    global _meter
    if _meter is None:
        switch_on("--metrics-bind", summed=False)
        _meter = WorkerMeter(_FIGURES, TAKE_LATENCY)
        on_flush(_meter.flush)
    return _meter
