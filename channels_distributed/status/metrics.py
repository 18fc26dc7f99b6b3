"""The status server's ``/metrics``: per route key, the figures of the latest status in the
Prometheus text format, what an autoscaler reads (KEDA's Prometheus scaler, or the HPA through
prometheus-adapter).

A scrape sends no Redis command: the collector reads the status the server collected last (once
a second, for every client) and the history's growing totals. It is registered in a registry of
its own, never prometheus_client's global one, so that a process that also exports the package's
other metrics (or its own) exports each once. prometheus_client is optional (the ``metrics``
extra): without it, ``exposition`` is None and ``/metrics`` says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..figures import STATUS_OF
from .history import Totals

__all__ = ["GAUGES", "INSTALL", "Exposition", "RouteCollector", "exposition"]

#: The fix ``/metrics`` gives where prometheus_client is missing.
INSTALL = "pip install 'channels-distributed[metrics]'"
_PREFIX = "channels_distributed_route_"
#: Gauge name (after ``channels_distributed_route_``) -> (what it is, how it is read).
GAUGES: dict[str, tuple[str, Callable[[Mapping[str, Any]], float]]] = {
    "queued": ("requests waiting in the route's queue", lambda r: r.get("queued") or 0),
    "oldest_seconds": ("age of the oldest queued request (0 when none waits)",
                       lambda r: r.get("oldest_s") or 0.0),
    "workers": ("live workers serving the route", lambda r: len(r.get("workers") or ())),
    "in_flight": ("connections the route's workers are serving", lambda r: r.get("in_flight") or 0),
    "concurrency": ("connections the route's live workers may serve at once (summed)",
                    lambda r: r.get("concurrency") or 0),
    "saturation": ("(queued + in flight) / concurrency (/ 1 without workers): above 1, more "
                   "work than the workers take at once", lambda r: r.get("saturation") or 0.0),
}

Exposition = Callable[[], tuple[bytes, str]]


class RouteCollector:
    """A prometheus_client collector of the routes of the latest status.

    ``latest()`` gives the status collected last (None before the first), ``totals()`` the
    history's growing counters per route, ``healthy()`` whether the last collection succeeded.
    """

    def __init__(self, latest: Callable[[], Mapping[str, Any] | None],
                 totals: Callable[[], Mapping[str, Totals]],
                 healthy: Callable[[], bool]) -> None:
        self._latest = latest
        self._totals = totals
        self._healthy = healthy

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("channels_distributed_status_up",
                               "1 when the status server's last collection succeeded")
        up.add_metric([], 1.0 if self._healthy() else 0.0)
        yield up
        status = self._latest() or {}
        routes: Mapping[str, Any] = status.get("routes") or {}
        for name, (text, read) in GAUGES.items():
            gauge = GaugeMetricFamily(_PREFIX + name, f"Per route key: {text}.",
                                      labels=["route"])
            for key, route in sorted(routes.items()):
                gauge.add_metric([key], float(read(route)))
            yield gauge
        totals = self._totals()
        requests = CounterMetricFamily(_PREFIX + "requests", "Per route key: requests the "
                                       "edges received (summed over edges).", labels=["route"])
        served = CounterMetricFamily(_PREFIX + "served", "Per route key: requests the edges "
                                     "saw served (summed over edges).", labels=["route"])
        failures = CounterMetricFamily(
            _PREFIX + "failures", "Per route key: requests the edges failed, by cause and the "
            "status the client got (summed over edges).", labels=["route", "cause", "status"])
        for key, total in sorted(totals.items()):
            requests.add_metric([key], total.requests)
            served.add_metric([key], total.served)
            for cause, count in sorted(total.failures.items()):
                status_code = str(STATUS_OF.get(cause, "unknown"))
                failures.add_metric([key, cause, status_code], count)
        yield from (requests, served, failures)


def exposition(collector: RouteCollector) -> Exposition | None:
    """A function giving ``/metrics``' body and content type from a private registry holding
    ``collector``; None where prometheus_client is not installed."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return lambda: (generate_latest(registry), CONTENT_TYPE_LATEST)
