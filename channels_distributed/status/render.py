"""The status as a plain text table, for a terminal (``channels-distributed status``).

Four parts, each left out when it has nothing to show but the first: the route keys (queue,
oldest request, taken, workers, in flight against concurrency, saturation, served, failures by
cause), the workers (one line each, their figures summed over their route keys), the edges, and
the layer's deepest channels and largest groups. Only ASCII, so that any terminal and any log
shows it as it is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..figures import STATUS_OF

__all__ = ["duration", "render"]

# The causes whose client got 502 (the worker was lost); the others got 503.
_BAD_GATEWAY = frozenset(cause for cause, status in STATUS_OF.items() if status == 502)
_NONE = "-"


def render(status: Mapping[str, Any]) -> str:
    """The table of a ``collect()`` result."""
    routes: Mapping[str, Any] = status["routes"]
    workers = _workers(routes)
    edges: Sequence[Mapping[str, Any]] = status["edges"]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["generated_at"]))
    lines = [f"channels-distributed status: prefix {status['prefix']!r} at {when}: "
             f"{_plural(len(routes), 'route key')}, {_plural(len(workers), 'worker')}, "
             f"{_plural(len(edges), 'edge')}", ""]
    if routes:
        lines += _routes(routes)
    else:
        lines.append(f"No route key: no live worker or edge under prefix {status['prefix']!r}, "
                     "and no route queue found (is --prefix right?)")
    if workers:
        lines += ["", "WORKERS", *_worker_lines(workers)]
    if edges:
        lines += ["", "EDGES", *_edge_lines(edges)]
    lines += ["", *_layer(status["layer"])]
    return "\n".join(lines) + "\n"


def _routes(routes: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, route in routes.items():
        rows.append([name + _spread(route.get("spread") or []), route["queued"],
                     _age(route["oldest_s"]), route["taken"],
                     len(route["workers"]), f"{route['in_flight']}/{route['concurrency']}",
                     f"{route['saturation']:.2f}", route["served"],
                     _failures(route["failures"])])
    return _table(["ROUTE KEY", "QUEUED", "OLDEST", "TAKEN", "WORKERS", "IN FLIGHT",
                   "SATURATION", "SERVED", "FAILURES"], rows, left={0, 8})


def _spread(counts: Sequence[int]) -> str:
    """After a spread route key: over how many sub-queues the edges queue it, all of them
    (``api (3 sub-queues)``) or, when they differ, each count (``api (3/1 sub-queues, edges
    differ)``: the EDGES part says which edge spreads it how)."""
    if not counts:
        return ""
    if len(counts) == 1:
        return f" ({counts[0]} sub-queues)"
    return f" ({'/'.join(str(n) for n in counts)} sub-queues, edges differ)"


def _workers(routes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each worker once, its figures summed over the route keys it serves."""
    found: dict[str, dict[str, Any]] = {}
    for name, route in routes.items():
        for entry in route["workers"]:
            worker = found.get(entry["id"])
            if worker is None:
                worker = found[entry["id"]] = {**entry, "in_flight": 0, "served": 0,
                                               "errors": 0, "routes": []}
            worker["routes"].append(name)
            for figure in ("in_flight", "served", "errors"):
                worker[figure] += entry[figure]
    return sorted(found.values(), key=lambda w: (w["host"], w["pid"], w["id"]))


def _worker_lines(workers: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [[w["host"], w["pid"], ", ".join(w["routes"]),
             f"{w['in_flight']}/{w['concurrency']}", w["served"], w["errors"],
             duration(w["up_s"]), _build(w), w["state"]] for w in workers]
    return _table(["HOST", "PID", "ROUTE KEYS", "IN FLIGHT", "SERVED", "ERRORS", "UP",
                   "VERSION", "STATE"], rows, left={0, 2, 6, 7, 8})


def _edge_lines(edges: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for edge in edges:
        failures = edge["failures"]
        gateway = sum(n for cause, n in failures.items() if cause in _BAD_GATEWAY)
        rows.append([edge["host"], edge["pid"], edge["open"], edge["requests"], edge["served"],
                     sum(failures.values()) - gateway, gateway, _failures(failures),
                     duration(edge["up_s"]), _build(edge), edge["state"],
                     _in_force(edge)])
    return _table(["HOST", "PID", "OPEN", "REQUESTS", "SERVED", "503", "502", "FAILURES", "UP",
                   "VERSION", "STATE", "ROUTES"], rows, left={0, 7, 8, 9, 10, 11})


def _in_force(edge: Mapping[str, Any]) -> str:
    """The route overrides the edge applies: their version and each key's (``settings`` when
    none is in force); then the keys it spreads (``spread api 3``)."""
    overrides = edge.get("overrides") or {}
    listed = "; ".join(f"{key}: {what}" for key, what in sorted(overrides.items()))
    spread = edge.get("spread") or {}
    if spread:
        listed += "; " if listed else "settings; "
        listed += "spread " + ", ".join(f"{key} {n}" for key, n in sorted(spread.items()))
    return f"v{edge.get('routes_version', 0)} {listed or 'settings'}"


def _layer(layer: Mapping[str, Any]) -> list[str]:
    scanned = _plural(layer["scanned"], "key")
    if layer["complete"]:
        head = f"LAYER: {scanned} under the prefix, all scanned"
    else:
        head = (f"LAYER: {scanned} scanned, not all of them (the scan stops after "
                "--scan-limit keys per server): the lists below may miss some")
    lines = [head]
    if layer["channels"]:
        lines += _table(["CHANNEL", "QUEUED"], [[c["name"], c["queued"]]
                                                 for c in layer["channels"]], left={0})
    if layer["groups"]:
        lines += [""] if layer["channels"] else []
        lines += _table(["GROUP", "MEMBERS"], [[g["name"], g["members"]]
                                                for g in layer["groups"]], left={0})
    if not layer["channels"] and not layer["groups"]:
        lines.append("No message waits in a channel, and no group has members.")
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]],
           left: set[int]) -> list[str]:
    """Columns as wide as their widest cell; text aligned left, figures right."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(cell.ljust(width) if i in left else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths))).rstrip()
            for row in cells]


def _failures(failures: Mapping[str, int]) -> str:
    shown = [f"{cause} {count}" for cause, count in sorted(failures.items()) if count]
    return ", ".join(shown) or _NONE


def _build(process: Mapping[str, Any]) -> str:
    return " ".join(part for part in (process["version"], process["build"]) if part) or _NONE


def _age(seconds: float | None) -> str:
    if seconds is None:
        return _NONE
    return f"{seconds:.1f}s" if seconds < 10 else duration(seconds)


def duration(seconds: float) -> str:
    """``42s``, ``4m05s``, ``2h05m``, ``3d04h``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
