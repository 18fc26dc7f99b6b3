"""Scale-out on loopback: 1 Redis server vs 3 shards vs a 3-primary cluster, in one run.

    .venv/bin/python bench/scale.py [--duration 3] [--rounds 3] [--connections 64]
                                    [--workers 1] [--hot-processes 3] [--pairs 100]
                                    [--messages 200] [--tiny]

Three deployments of Redis run side by side on private loopback ports (``bench/topologies.py``),
and each is measured in interleaved rounds (every deployment once, then again), so that a slow
spell of a shared machine hits them alike; each figure is the median of the rounds:

* **layer**: ``--pairs`` producer/consumer pairs in this process, one per named channel
  (``scale.0``, ``scale.1``...: each its own key, so its own slot, spread over the shards and
  primaries; a process-local channel would put them all on its owner's), ``--messages`` each;
  messages/s and Redis CPU per message.
* **distributed hello**: an edge (the distributor under gunicorn's ASGIWorker, one process) and
  ``--workers`` workers per deployment, loaded by wrk with ``--connections`` connections;
  requests/s, and CPU per request of Redis, the edge and the workers.
* **hot route** (on the cluster): the route key on one queue, against the same key spread over 3
  sub-queues (the distributor's ``spread`` setting) when this checkout has it, each served by
  ``--hot-processes`` edge processes (one gunicorn) and as many workers, so that their inboxes
  land on every primary as a deployment's many processes' do; Redis CPU per request on each
  primary, and the share of the busiest, which bounds what one route can carry.

Redis CPU is ``used_cpu_sys + used_cpu_user`` from ``INFO cpu`` of every primary, read before and
after the measured phase; the edge's and workers' from ``/proc/<pid>/stat``. Ratios are against the
1-server row of the same run. On a machine of 2 cores every process shares the same two, so
requests/s cannot grow with more primaries here: CPU per request is the figure that carries over,
and the run ends with the capacity model (``bench/capacity.py``) computed from the cluster's.

Needs ``nginx`` and ``wrk`` (the shared bench runner checks both; Debian: ``apt-get install -y
nginx wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.budget import children, cpu_seconds  # noqa: E402
from bench.capacity import Costs, example, route_ceiling  # noqa: E402
from bench.distributed import (  # noqa: E402
    edge,
    redis_stats,
    run_with_servers,
    wait_ok,
    worker,
    wrk,
)
from bench.pairs import CAPACITY, run_pairs  # noqa: E402
from bench.topologies import CLUSTER, NAMES, SINGLE, Topology  # noqa: E402
from channels_distributed.embedded import RedisServer, free_port, primary_of  # noqa: E402
from channels_distributed.layer import RedisChannelLayer  # noqa: E402

KEY = "bench"  # the route key every edge forwards to (bench.distributed.edge_app)
SPREAD = 3
ONE_QUEUE, SPREAD_ROW = "one queue", f"spread over {SPREAD}"
LAYER_TIMEOUT = 120.0


@dataclass
class Sample:
    """One measured phase: what was done, in how long, and the CPU seconds it cost."""

    count: int
    seconds: float
    redis: list[float]  # per primary
    procs: dict[str, float] = field(default_factory=dict)  # per named process (or group)
    commands: int = 0  # Redis commands clients sent, over every primary
    non_2xx: int = 0  # answers other than 200 (a 503: no worker took it in time)
    socket_errors: int = 0  # wrk's: connect, read, write, and its 2 s timeout

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def us(self, seconds: float) -> float:
        """Microseconds of CPU per request (message) for ``seconds`` of CPU."""
        return seconds * 1e6 / self.count if self.count else 0.0


def commands(topology: Topology) -> int:
    """Commands clients have sent to the primaries of ``topology`` so far (INFO excluded)."""
    return sum(redis_stats(server)[0] for server in topology.primaries)


def median(samples: list[Sample], figure: Callable[[Sample], float]) -> float:
    return statistics.median(figure(s) for s in samples)


# Layer ---------------------------------------------------------------------------------------
async def layer_phase(topology: Topology, pairs: int, messages: int) -> Sample:
    layer = RedisChannelLayer(hosts=topology.hosts, capacity=CAPACITY, prefix="scale")
    channels = [f"scale.{i}" for i in range(pairs)]
    try:
        await run_pairs(layer, channels, 3)  # connections made, scripts loaded
        sent, redis, own = commands(topology), topology.cpu(), time.process_time()
        elapsed = await asyncio.wait_for(run_pairs(layer, channels, messages), LAYER_TIMEOUT)
        redis_after, own_after, sent_after = topology.cpu(), time.process_time(), commands(topology)
    finally:
        await layer.close()
    return Sample(pairs * messages, elapsed, [b - a for a, b in zip(redis, redis_after)],
                  {"client": own_after - own}, sent_after - sent)


# Distributed hello ---------------------------------------------------------------------------
@dataclass
class Served:
    """An edge and its workers on one deployment, under a prefix of their own."""

    topology: Topology
    prefix: str
    url: str
    edge_pids: list[int]
    worker_pids: list[int]

    def cpu(self) -> dict[str, float]:
        return {"edge": sum(sum(cpu_seconds(pid)) for pid in self.edge_pids),
                "workers": sum(sum(cpu_seconds(pid)) for pid in self.worker_pids)}

    def inboxes(self) -> list[int]:
        """How many of its processes' inboxes each primary holds (their leases' keys)."""
        return [len(server.keys(f"{self.prefix}:{{p:*}}:lease"))
                for server in self.topology.primaries]


def start_served(topology: Topology, prefix: str, edges: int, workers: int,
                 procs: list[subprocess.Popen[bytes]], **env: str) -> Served:
    port = free_port()
    master = edge(port, topology.hosts, processes=edges, CD_PREFIX=prefix, **env)
    procs.append(master)
    served = [worker(topology.hosts, prefix) for _ in range(workers)]
    procs.extend(served)
    url = f"http://127.0.0.1:{port}/"
    wait_ok(url, timeout=60)  # a 200 has been through Redis and a worker
    deadline = time.monotonic() + 60
    while len(edge_pids := children(master.pid)) < edges:  # gunicorn starts them in turn
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn started {len(edge_pids)} of {edges} edge processes")
        time.sleep(0.1)
    return Served(topology, prefix, url, edge_pids, [proc.pid for proc in served])


def http_phase(served: Served, connections: int, duration: float) -> Sample:
    topology = served.topology
    wrk(served.url, connections, 1.0)  # warm up
    sent, redis, procs = commands(topology), topology.cpu(), served.cpu()
    result = wrk(served.url, connections, duration)
    redis_after, procs_after, sent_after = topology.cpu(), served.cpu(), commands(topology)
    done = int(result["requests"])
    return Sample(done, done / result["rps"] if result["rps"] else 0.0,
                  [b - a for a, b in zip(redis, redis_after)],
                  {name: procs_after[name] - procs[name] for name in procs},
                  sent_after - sent, int(result["non_2xx"]), int(result["socket_errors"]))


# The run -------------------------------------------------------------------------------------
def spread_supported() -> bool:
    """Whether this checkout's distributor has the ``spread`` setting (a hot route over
    sub-queues)."""
    from channels_distributed.conf import DistributorConfig

    return "spread" in DistributorConfig.__dataclass_fields__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="workers per deployment")
    parser.add_argument("--hot-processes", type=int, default=3,
                        help="edge processes, and workers, of each hot-route row")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200, help="per producer")
    parser.add_argument("--tiny", action="store_true",
                        help="the smallest run that prints every row (the bench's test)")
    args = parser.parse_args()
    if args.tiny:
        args.duration, args.rounds, args.pairs, args.messages = 1.0, 1, 10, 5
    return run_with_servers(_run, args)


def _run(args: argparse.Namespace, redis: RedisServer, workdir: Path,
         procs: list[subprocess.Popen[bytes]]) -> int:
    topologies: dict[str, Topology] = {}
    try:
        for name in NAMES:
            topologies[name] = Topology.start(name, redis if name == SINGLE else None)
        layer: dict[str, list[Sample]] = {name: [] for name in NAMES}
        for _ in range(args.rounds):
            for name, topology in topologies.items():
                layer[name].append(asyncio.run(layer_phase(topology, args.pairs,
                                                           args.messages)))
        servers = {name: start_served(topology, "bench", 1, args.workers, procs)
                   for name, topology in topologies.items()}
        hot = args.hot_processes
        servers[ONE_QUEUE] = start_served(topologies[CLUSTER], "hot", hot, hot, procs)
        if spread_supported():
            servers[SPREAD_ROW] = start_served(topologies[CLUSTER], "spread", hot, hot, procs,
                                               CD_SPREAD=f"{KEY}={SPREAD}")
        http: dict[str, list[Sample]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, served in servers.items():
                http[name].append(http_phase(served, args.connections, args.duration))
        inboxes = {name: served.inboxes() for name, served in servers.items()}
        report(args, layer, http, inboxes)
    finally:
        # The edges and workers go before their servers, so none of them retries a dead one.
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        for topology in topologies.values():
            topology.cleanup()
    return 0


# Report --------------------------------------------------------------------------------------
def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _redis(sample: Sample) -> float:
    return sample.us(sum(sample.redis))


def _common(name: str, samples: list[Sample], base: list[Sample]) -> str:
    """Rate and Redis CPU with their ratios to the 1-server row, and commands per item."""
    rate, cpu = median(samples, lambda s: s.rate), median(samples, _redis)
    sent = median(samples, lambda s: s.commands / s.count if s.count else 0.0)
    return (f"{name:<20}{rate:>10,.0f}{_ratio(rate, median(base, lambda s: s.rate)):>8}"
            f"{cpu:>12.1f}{_ratio(cpu, median(base, _redis)):>8}{sent:>8.2f}")


def report(args: argparse.Namespace, layer: dict[str, list[Sample]],
           http: dict[str, list[Sample]], inboxes: dict[str, list[int]]) -> None:
    print(f"Scale-out on loopback: medians of {args.rounds} interleaved round(s); ratios vs "
          f"the {SINGLE} row of this run; CPU in microseconds (user + system) per message or "
          "request; Redis: summed over its servers; cmds: commands clients sent")
    print(f"\nlayer: {args.pairs} producer/consumer pairs on named channels, {args.messages} "
          "messages each, one process")
    print(f"{'topology':<20}{'msgs/s':>10}{'ratio':>8}{'Redis us':>12}{'ratio':>8}"
          f"{'cmds':>8}{'client us':>11}")
    for name, samples in layer.items():
        print(_common(name, samples, layer[SINGLE]) + f"{_hop(samples, 'client'):>11.1f}")
    print(f"\ndistributed hello: wrk c={args.connections}, {args.duration:g} s; one edge "
          f"(ASGIWorker) and {args.workers} worker(s) per row")
    print(f"{'topology':<20}{'req/s':>10}{'ratio':>8}{'Redis us':>12}{'ratio':>8}{'cmds':>8}"
          f"{'edge us':>9}{'worker us':>11}{'total us':>10}")
    for name in NAMES:
        _http_row(name, http[name], http[SINGLE])
    _hot_route(args, http, inboxes)
    cluster = http[CLUSTER]
    costs = Costs(median(cluster, _redis), _hop(cluster, "edge"), _hop(cluster, "workers"))
    print(f"\ncapacity model from the {CLUSTER} row (bench/capacity.py --redis-us "
          f"{costs.redis_us:.1f} --edge-us {costs.edge_us:.1f} --worker-us "
          f"{costs.worker_us:.1f}):")
    print(example(costs))


def _http_row(name: str, samples: list[Sample], base: list[Sample]) -> None:
    edge_us, worker_us = _hop(samples, "edge"), _hop(samples, "workers")
    non_2xx, socket = (sum(s.non_2xx for s in samples), sum(s.socket_errors for s in samples))
    flag = (f"  ({non_2xx} non-2xx, {socket} socket errors of {sum(s.count for s in samples)})"
            if non_2xx or socket else "")
    print(_common(name, samples, base) + f"{edge_us:>9.1f}{worker_us:>11.1f}"
          f"{median(samples, _redis) + edge_us + worker_us:>10.1f}{flag}")


def _hop(samples: list[Sample], name: str) -> float:
    return median(samples, lambda s: s.us(s.procs[name]))


def _primary(samples: list[Sample], index: int) -> float:
    return median(samples, lambda s: s.us(s.redis[index]))


def _hot_route(args: argparse.Namespace, http: dict[str, list[Sample]],
               inboxes: dict[str, list[int]]) -> None:
    hot = args.hot_processes
    print(f"\nhot route on the {CLUSTER}: {hot} edge processes and {hot} workers per row; "
          f"ratios vs the {ONE_QUEUE} row; the queue is on primary "
          f"{primary_of(f'hot:{{rt:{KEY}}}:q', 3)}")
    print(f"{'':<20}{'req/s':>10}{'ratio':>8}{'Redis us':>12}{'ratio':>8}{'cmds':>8}"
          f"{'edge us':>9}{'worker us':>11}{'total us':>10}")
    for name in (ONE_QUEUE, SPREAD_ROW):
        if name in http:
            _http_row(name, http[name], http[ONE_QUEUE])
        else:
            print(f"{name:<20}not measured: this checkout's distributor has no 'spread' "
                  "setting (a route key over sub-queues); it runs once it has")
    print("Redis CPU us/req on each primary (share of the three), and the inboxes of the "
          "edge processes and workers each holds:")
    for name in (ONE_QUEUE, SPREAD_ROW):
        if name not in http:
            continue
        samples = http[name]
        per = [_primary(samples, i) for i in range(len(samples[0].redis))]
        total = sum(per) or 1.0
        cells = "  ".join(f"p{i} {us:5.1f} ({us / total:4.0%})" for i, us in enumerate(per))
        print(f"{name:<20}{cells}   busiest {max(per) / total:.0%}; inboxes "
              + ", ".join(f"p{i} {n}" for i, n in enumerate(inboxes[name]))
              + f"; one route's ceiling at 80% of a core: {route_ceiling(max(per)):,.0f} req/s")


if __name__ == "__main__":
    sys.exit(main())
