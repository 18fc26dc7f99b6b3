"""Counts kept between flushes reach the page as the same calls made one by one would have:
held against prometheus_client's own ``inc()`` and ``observe()`` (the histogram's flush adds to
its children's bucket values, which prometheus_client keeps as ``observe()`` does)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from scrape import parse

from channels_distributed.metrics.families import DURATION_BUCKETS, WAIT_BUCKETS
from channels_distributed.metrics.pending import PendingCounter, PendingHistogram

AMOUNTS = [0.0, 0.0004, 0.0005, 0.0006, 0.001, 0.3, 2.5, 4.99, 5.0, 31.0, 1e9, 0.25, 0.25]


def _pair(bounds: tuple[float, ...]) -> tuple[Histogram, Histogram, CollectorRegistry,
                                               CollectorRegistry]:
    one, batched = CollectorRegistry(), CollectorRegistry()
    return (Histogram("h", "h", ["route"], registry=one, buckets=bounds),
            Histogram("h", "h", ["route"], registry=batched, buckets=bounds), one, batched)


def _page(registry: CollectorRegistry) -> dict[object, float]:
    """Every sample but the creation times."""
    return {key: number for key, number in parse(generate_latest(registry).decode()).items()
            if not key[0].endswith("_created")}


def _same(one: CollectorRegistry, other: CollectorRegistry) -> bool:
    # Sums with float rounding forgiven: the batch adds its amounts in another order.
    return _page(one) == pytest.approx(_page(other), rel=1e-12)


def test_a_flushed_histogram_reads_as_observed_one_by_one() -> None:
    for bounds in (WAIT_BUCKETS, DURATION_BUCKETS):
        direct, batched, one, many = _pair(bounds)
        pending = PendingHistogram(batched.labels("k"), bounds)
        for amount in AMOUNTS:
            direct.labels("k").observe(amount)
            pending.observe(amount)
        assert not _same(one, many)  # nothing reaches the metric before a flush
        pending.flush()
        assert _same(one, many)
        pending.flush()  # nothing new: nothing added
        for amount in AMOUNTS[:3]:  # and again after a flush
            direct.labels("k").observe(amount)
            pending.observe(amount)
        pending.flush()
        assert _same(one, many)


def test_a_flushed_counter() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "c", registry=registry)
    pending = PendingCounter(counter)
    pending.count += 3
    pending.flush()
    pending.flush()
    pending.count += 2
    pending.flush()
    assert registry.get_sample_value("c_total") == 5
