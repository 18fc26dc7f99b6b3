"""Counts kept in plain Python on the request path, added to the Prometheus metrics in batches.

A prometheus_client ``inc()`` or ``observe()`` takes a lock (and, in multi-process mode, writes
a memory-mapped file) on every call: a few thousand instructions each, about a sixth of what an
edge spends on a hello-world request when made for every request (``bench/metrics_cost.py``).
Here a request adds to integers and a list instead, and ``flush_all()`` adds what accumulated to
the metrics: before every page is rendered (so a page is exact for its own process) and, at a
gunicorn edge, once a second (``metrics.edge``), so that the page another process renders is at
most that much behind.

Counted from the event loop's thread only: the edge, a worker and their layers run in one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

__all__ = ["PendingCounter", "PendingHistogram", "flush_all", "on_flush"]

_FLUSHES: list[Callable[[], None]] = []


def on_flush(flush: Callable[[], None]) -> None:
    """Call ``flush`` at every ``flush_all()`` from now on."""
    _FLUSHES.append(flush)


def flush_all() -> None:
    """Add every count kept since the last flush to its metric."""
    for flush in _FLUSHES:
        flush()


class PendingCounter:
    """A counter child's increments since the last flush."""

    __slots__ = ("child", "count")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 0

    def flush(self) -> None:
        if self.count:
            count, self.count = self.count, 0
            self.child.inc(count)


class PendingHistogram:
    """A histogram child's observations since the last flush: per bucket, and their sum."""

    __slots__ = ("bounds", "buckets", "child", "total")

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self.child = child
        self.bounds = bounds  # without +Inf: bisect past the last one is the +Inf bucket
        self.buckets = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        # The first bucket whose bound is >= amount, as Histogram.observe picks it.
        self.buckets[bisect_left(self.bounds, amount)] += 1
        self.total += amount

    def flush(self) -> None:
        buckets = self.buckets
        if not any(buckets):
            return
        total, self.total = self.total, 0.0
        self.buckets = [0] * len(buckets)
        # Histogram has no call to add many observations at once: its children keep one value
        # per bucket (not cumulative) and their sum, as observe() adds to them. A test holds
        # this against observe() (tests/metrics/test_pending.py).
        child = self.child
        child._sum.inc(total)
        for index, count in enumerate(buckets):
            if count:
                child._buckets[index].inc(count)
