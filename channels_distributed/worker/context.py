"""What a forwarded connection in a worker uses of its node: one frozen object per serving run.

A ``Connection`` is given this, never the ``Node``: it sees what it needs and cannot change it,
and the node's own state (its take loops, counters, stopping) stays the node's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..forwarding.hub import Hub
from ..transport.liveness import Watch
from ..typing import ASGIApp, Event

__all__ = ["WorkerContext"]


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """The shared, read-only surroundings of every connection a node runs."""

    hub: Hub  # this process's inbox and writers, in the node's event loop
    watch: Watch  # fails connections whose distributor went away
    app: ASGIApp  # the application, adapted to ASGI 3
    app_name: str  # ``module:qualname``, named in log lines about the application
    window: int  # flow-control window, in data events per direction
    max_chunk: int  # the largest body chunk sent as one event
    accept_event: Event  # this node's ``cd.accept``, shared by its connections
    probe_after: float  # a request body quiet this long: ask the edge whether entries were lost
    lifespan_state: dict[str, Any]  # copied into each connection's scope
