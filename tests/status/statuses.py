"""Status documents shaped as ``channels-distributed status --json`` gives them (schema 1,
docs/status.rst), for the tests of the status server's own logic (history, HTTP, metrics), which
take them from a stand-in ``collect`` instead of Redis."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def worker(wid: str, served: int = 0, in_flight: int = 0, concurrency: int = 10,
           host: str = "box", pid: int = 1) -> dict[str, Any]:
    return {"id": wid, "host": host, "pid": pid, "concurrency": concurrency,
            "in_flight": in_flight, "served": served, "errors": 0, "started": 1000.0,
            "up_s": 5.0, "version": "1.0", "protocol": 1, "build": "compiled",
            "state": "serving"}


def route(queued: int = 0, requests: int = 0, served: int = 0,
          failures: Mapping[str, int] | None = None, workers: Iterable[dict[str, Any]] = (),
          oldest_s: float | None = None, taken: int = 0) -> dict[str, Any]:
    listed = list(workers)
    concurrency = sum(w["concurrency"] for w in listed)
    in_flight = sum(w["in_flight"] for w in listed)
    return {"queued": queued, "oldest_s": oldest_s, "taken": taken, "workers": listed,
            "concurrency": concurrency, "in_flight": in_flight,
            "saturation": (queued + in_flight) / (concurrency or 1),
            "requests": requests, "served": served, "failures": dict(failures or {})}


def status(t: float, routes: Mapping[str, dict[str, Any]] | None = None,
           edges: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"schema_version": 1, "generated_at": t, "prefix": "asgi",
            "routes": dict(routes or {}), "edges": list(edges),
            "layer": {"channels": [], "groups": [], "scanned": 0, "complete": True}}
