"""gunicorn server hooks for an edge whose metrics are summed over its worker processes.

In the gunicorn configuration file::

    from channels_distributed.metrics.hooks import child_exit, on_starting

or, with no configuration file of your own, ``gunicorn -c python:channels_distributed.metrics.hooks
...``. Both run in the master and need ``PROMETHEUS_MULTIPROC_DIR`` (docs/metrics.rst); neither
imports prometheus_client when it is not set. Only gunicorn's setting names are defined at the
top of this module: gunicorn reads every such name of a ``python:`` configuration module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import multiprocess_dir

__all__ = ["child_exit", "on_starting"]


def on_starting(server: Any) -> None:
    """Before the first worker starts: forget the figures a previous run left in the directory
    (prometheus_client asks for it to be emptied between runs: a dead run's open connections
    would be counted as open)."""
    folder = multiprocess_dir()
    if folder is not None:
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker process exited (or was killed): its open connections are no longer open. Its
    counters stay: totals never shrink."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
