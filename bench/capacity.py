"""The capacity model of docs/performance.rst: from CPU time per request to the Redis primaries,
edge cores and worker cores a target load needs.

    .venv/bin/python bench/capacity.py [--target 20000] [--budget 0.8]
                                       [--redis-us R --edge-us E --worker-us W]

Every process on the distributed path spends CPU per request: the edge (the distributor under the
ASGIWorker), Redis (the scripts and pops of the queue and the inboxes) and the worker (the
application and its side of the forwarding). A Redis server runs its commands on one thread, so
one primary carries at most ``budget`` of one core: ``budget / redis_us`` requests per second.
The edge and the worker scale by processes, one per core. ``bench/scale.py`` measures the three
costs and prints this model for its own figures; the worked example of the docs is this file's
output for ``DOCUMENTED`` (a test checks that the docs hold exactly that).

What the model assumes, and the docs say: the load spreads evenly over the primaries (many route
keys, many edges and workers, whose inboxes land on every primary; a route too hot for one primary
is spread over sub-queues), and the cores are as fast as the ones that measured the costs.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

__all__ = ["DOCUMENTED", "DOCUMENTED_BUDGET", "DOCUMENTED_TARGETS", "Costs", "Plan", "example",
           "plan", "route_ceiling"]


@dataclass(frozen=True)
class Costs:
    """CPU microseconds (user and system) per request of each hop; Redis's summed over all of
    its servers."""

    redis_us: float
    edge_us: float
    worker_us: float

    def __post_init__(self) -> None:
        for name in ("redis_us", "edge_us", "worker_us"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of microseconds, "
                                 f"got {value!r}")


@dataclass(frozen=True)
class Plan:
    """What ``target`` requests/s need at ``budget`` of each core."""

    target: float
    budget: float
    per_primary: float  # requests/s one primary carries at the budget
    primaries: int
    per_edge_core: float
    edge_cores: int
    per_worker_core: float
    worker_cores: int


def _check_budget(budget: float) -> None:
    if not 0 < budget <= 1:
        raise ValueError(f"budget is a share of one core, from 0 (excluded) to 1, got {budget!r}")


def _per_core(cost_us: float, budget: float) -> float:
    return budget * 1e6 / cost_us


def plan(costs: Costs, target: float, budget: float = 0.8) -> Plan:
    """The primaries, edge cores and worker cores ``target`` requests/s need when no core runs
    busier than ``budget`` (0.8: a fifth kept for bursts, failover and the operator's tools)."""
    _check_budget(budget)
    if not target > 0:
        raise ValueError(f"target must be a positive number of requests/s, got {target!r}")
    per_primary = _per_core(costs.redis_us, budget)
    per_edge = _per_core(costs.edge_us, budget)
    per_worker = _per_core(costs.worker_us, budget)
    return Plan(target, budget, per_primary, math.ceil(target / per_primary),
                per_edge, math.ceil(target / per_edge), per_worker,
                math.ceil(target / per_worker))


def route_ceiling(busiest_us: float, budget: float = 0.8) -> float:
    """Requests/s one route key can carry, whatever the number of primaries: its busiest
    primary spends ``busiest_us`` of CPU per request of the route (on one queue, the queue's
    primary; spread over sub-queues, about that over their number, plus the spread's own cost)."""
    if not (math.isfinite(busiest_us) and busiest_us > 0):
        raise ValueError(f"busiest_us must be a positive number of microseconds, got "
                         f"{busiest_us!r}")
    _check_budget(budget)
    return _per_core(busiest_us, budget)


#: The inputs of the docs' worked example: CPU microseconds per request measured by one run of
#: bench/scale.py on its 3-primary cluster (docs/performance.rst, "Scale-out and capacity"), and
#: the loads it is worked out for.
DOCUMENTED = Costs(redis_us=20.3, edge_us=57.8, worker_us=88.5)
DOCUMENTED_TARGETS = (20_000, 100_000)
DOCUMENTED_BUDGET = 0.8


def example(costs: Costs = DOCUMENTED, target: float = DOCUMENTED_TARGETS[0],
            budget: float = DOCUMENTED_BUDGET) -> str:
    """The worked example as the reStructuredText table the docs hold."""
    result = plan(costs, target, budget)
    rows = [
        ("Redis primaries", costs.redis_us, result.per_primary, result.primaries),
        ("edge cores", costs.edge_us, result.per_edge_core, result.edge_cores),
        ("worker cores", costs.worker_us, result.per_worker_core, result.worker_cores),
    ]
    head = ("hop", "CPU us/req", f"req/s per core at {budget:.0%}",
            f"needed for {target:,.0f} req/s")
    cells = [head, *((name, f"{cost:.1f}", f"{per_core:,.0f}", str(needed))
                     for name, cost, per_core, needed in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    line = "  ".join("=" * width for width in widths)
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in cells]
    return "\n".join([line, text[0], line, *text[1:], line])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=DOCUMENTED_TARGETS[0])
    parser.add_argument("--budget", type=float, default=DOCUMENTED_BUDGET)
    parser.add_argument("--redis-us", type=float, default=DOCUMENTED.redis_us)
    parser.add_argument("--edge-us", type=float, default=DOCUMENTED.edge_us)
    parser.add_argument("--worker-us", type=float, default=DOCUMENTED.worker_us)
    args = parser.parse_args()
    try:
        costs = Costs(args.redis_us, args.edge_us, args.worker_us)
        print(example(costs, args.target, args.budget))
    except ValueError as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
