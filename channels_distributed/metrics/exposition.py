"""The metrics page: Prometheus' text format, of this process or of every process of a server.

``render()`` answers for this process alone, or, when ``PROMETHEUS_MULTIPROC_DIR`` is set (an
edge under gunicorn with several worker processes), for every process that wrote its figures
in that directory: prometheus_client's ``MultiProcessCollector`` sums counters and histograms
over all of them, dead ones included (a total does not shrink when a process exits), and the
open connections gauge over the live ones (``hooks.child_exit`` forgets a dead one's).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from . import multiprocess_dir
from .families import REGISTRY
from .pending import flush_all

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render(every_process: bool) -> bytes:
    """The page: summed over every process writing to ``PROMETHEUS_MULTIPROC_DIR`` when
    ``every_process`` and it is set, else this process's own figures. What this process
    counted since the last flush is added first: its own figures are exact."""
    flush_all()
    folder = multiprocess_dir() if every_process else None
    if folder is None:
        return generate_latest(REGISTRY)
    summed = CollectorRegistry()
    MultiProcessCollector(summed, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(summed)
