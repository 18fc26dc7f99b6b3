"""Prometheus metrics, off by default: where the hot path finds them, and the switch.

Metrics are on in a process once its edge has a ``metrics_path`` (``metrics.edge``) or its
worker a ``--metrics-bind`` (``metrics.worker``); both call ``switch_on()``. Until then nothing
here imports ``prometheus_client``, and ``LAYER`` is None: the channel layer and the Redis
transport check it, and that None check is all they pay while metrics are off (docs/metrics.rst
has the figures of ``bench/metrics_cost.py``).

Under gunicorn with several worker processes an edge's figures must be summed over all of them,
which prometheus_client does from ``PROMETHEUS_MULTIPROC_DIR`` (``metrics.exposition``). The
package's ``ASGIWorker`` says how many processes serve the application (``serving_processes``):
an edge with metrics on and several processes without that directory is refused at start-up,
since each process would answer with its own figures, and a scrape that reaches one process at
random reads counters that jump backwards and forwards.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from .layer import LayerMeter

__all__ = ["LAYER", "MULTIPROC_ENV", "edge_metrics_on", "multiprocess_dir", "serving_processes",
           "switch_on"]

#: The environment variable of prometheus_client's multi-process mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: The channel layer's and the Redis transport's meter; None while metrics are off.
LAYER: LayerMeter | None = None

_processes = 1  # processes serving the application here (the ASGIWorker says, under gunicorn)
_edge = False  # whether an edge of this process serves metrics


def switch_on(setting: str, *, summed: bool = True) -> None:
    """Metrics on in this process: the layer and the Redis transport count from now on.

    A ConfigurationError naming ``setting`` when prometheus_client is not installed, or when
    ``PROMETHEUS_MULTIPROC_DIR`` names no directory this process can write. A worker's
    figures are its own (not ``summed``): it refuses that directory, where they would be
    written and summed into those of the gunicorn edge reading it. Checked before
    prometheus_client is imported: it reads the variable once, at import."""
    global LAYER
    folder = multiprocess_dir()
    if folder is not None and not summed:
        raise ConfigurationError(
            MULTIPROC_ENV, f"is set for a process serving {setting}: its figures would be "
            "written to that directory and summed into those of the edge that reads it",
            f"unset {MULTIPROC_ENV} for workers (each serves its own figures on its "
            "--metrics-bind); only a gunicorn edge needs it")
    if LAYER is not None:
        return
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(setting, "metrics need prometheus_client, which is not "
                                 "installed", "pip install 'channels-distributed[metrics]'")
    if folder is not None and not (folder and os.path.isdir(folder)
                                   and os.access(folder, os.W_OK)):
        raise ConfigurationError(MULTIPROC_ENV, f"{folder!r} is not a directory this process "
                                 "can write", "create it (empty) before the server starts, "
                                 "writable by its user")
    from .layer import LayerMeter

    LAYER = LayerMeter()


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` (or prometheus_client's older lower-case name), if set.
    Set but empty counts as set, as prometheus_client counts it (it would write to the current
    directory): ``switch_on`` refuses it."""
    for name in (MULTIPROC_ENV, MULTIPROC_ENV.lower()):
        if name in os.environ:
            return os.environ[name]
    return None


def edge_metrics_on() -> None:
    """An edge of this process serves metrics at its ``metrics_path``."""
    global _edge
    _edge = True
    _check()


def serving_processes(count: int) -> None:
    """``count`` processes serve the application (gunicorn's ``--workers``): summing their
    figures needs prometheus_client's multi-process mode."""
    global _processes
    _processes = count
    _check()


def _check() -> None:
    if _edge and _processes > 1 and multiprocess_dir() is None:
        raise ConfigurationError(
            "metrics_path", f"the edge serves metrics from {_processes} gunicorn worker "
            f"processes, but {MULTIPROC_ENV} is not set: each process would answer with its "
            "own figures, at random", f"set {MULTIPROC_ENV} to an empty directory the processes "
            "can write (and child_exit = channels_distributed.metrics.hooks.child_exit in the "
            "gunicorn configuration; docs/metrics.rst), or run one worker process")
