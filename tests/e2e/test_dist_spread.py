"""A hot route spread over several sub-queues, with real processes: the sub-queues land on
different primaries of a 3-primary cluster, one worker empties them all, requests through an
edge on a spread route are all served once, and a worker killed while holding a sub-queue's
requests has them re-served by another."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import Deployment, Servers
from helpers import wait_for
from servers import primary_of
from status_schema import validate

from channels_distributed.protocol.keys import DistKeys
from channels_distributed.protocol.spread import sub_queues


def test_three_sub_queues_land_on_three_primaries(redis_cluster: Any) -> None:
    cluster = redis_cluster.cluster
    names = sub_queues("api", 3)
    queues = [DistKeys("asgi").queue(name) for name in names]
    slots = [int(cluster.primaries[0].command("CLUSTER", "KEYSLOT", q).split(b"\r\n")[0][1:])
             for q in queues]
    assert len(set(slots)) == 3
    assert sorted(primary_of(q, len(cluster.primaries)) for q in queues) == [0, 1, 2]


@pytest.mark.parametrize("kind", ["cluster", "sharded"])
async def test_an_edge_spreads_a_route_and_one_worker_serves_every_sub_queue(
        request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> None:
    """On a cluster (one ring reaches every node) and on three plain servers (a ring stays on
    the server of its sub-queue: the worker listens on each)."""
    if kind == "cluster":
        server: Any = request.getfixturevalue("redis_cluster").cluster
        nodes = server.primaries
    else:
        nodes = request.getfixturevalue("redis_sharded").servers
        server = Servers(nodes, " ".join(s.url for s in nodes))
    deployment = Deployment(server, tmp_path)
    # One sub-queue per server, in both cases (the same split of the slots).
    holders = {primary_of(DistKeys(deployment.prefix).queue(n), 3) for n in sub_queues("t", 3)}
    assert holders == {0, 1, 2}
    try:
        url = deployment.edge(CD_SPREAD="t=3")
        worker = deployment.worker("t")
        deployment.wait_registered("t", worker)
        keys = DistKeys(deployment.prefix)
        # The worker follows the edge's announcement: registered on every sub-queue.
        wait_for(lambda: all(deployment.integer("SCARD", keys.registry(name)) == 1
                             for name in sub_queues("t", 3)), what="registered on 3 sub-queues")
        # Its doorbell is listened to on the server of each sub-queue.
        ring = keys.ring("t")
        wait_for(lambda: all(node.command("PUBSUB", "NUMSUB", ring).endswith(b":1\r\n")
                             for node in nodes), what="the doorbell listened to everywhere")
        async with httpx.AsyncClient(timeout=15.0) as client:
            await asyncio.sleep(2.0)  # past the edge's warm-up: every sub-queue in use
            for _ in range(3):  # one at a time: c=1, each woken by the doorbell
                assert (await client.get(url + "/t/hello")).status_code == 200
            answers = await asyncio.gather(*(client.get(f"{url}/t/mark?tag=r{i}")
                                             for i in range(30)))
        assert [a.status_code for a in answers] == [200] * 30
        # Each ran exactly once.
        assert [len(deployment.recorded(f"ran-r{i}")) for i in range(30)] == [1] * 30
        assert worker.alive()
    finally:
        deployment.close()


def test_one_worker_empties_every_pre_filled_sub_queue(redis_single: Any,
                                                       tmp_path: Path) -> None:
    deployment = Deployment(redis_single.servers[0], tmp_path)
    try:
        url = deployment.edge(CD_SPREAD="t=3", worker_timeout=20.0)
        keys = DistKeys(deployment.prefix)
        wait_for(lambda: deployment.integer("EXISTS", keys.spread("t", 3)) == 1,
                 what="the edge's announcement")
        results: list[int] = []

        def call(i: int) -> None:
            results.append(httpx.get(f"{url}/t/hello", timeout=30.0).status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        time.sleep(2.0)  # past the edge's warm-up
        for thread in threads:
            thread.start()
        wait_for(lambda: all(deployment.integer("LLEN", keys.queue(name)) > 0
                             for name in sub_queues("t", 3)), what="every sub-queue filled")
        _the_status_shows_the_spread(deployment)
        worker = deployment.worker("t")
        for thread in threads:
            thread.join(30.0)
        assert results == [200] * 12
        assert all(deployment.integer("LLEN", keys.queue(name)) == 0
                   for name in sub_queues("t", 3))
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    finally:
        deployment.close()


def _the_status_shows_the_spread(deployment: Deployment) -> None:
    """``channels-distributed status``: the route key followed by its sub-queues, whose
    requests it counts, and the edge's spread (its card), in the table and in the JSON."""
    command = [str(Path(sys.executable).with_name("channels-distributed")), "status",
               "--url", deployment.redis.url, "--prefix", deployment.prefix]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    validate(status)
    assert set(status["routes"]) == {"t"} and status["routes"]["t"]["spread"] == [3]
    assert status["routes"]["t"]["queued"] >= 3
    assert [edge["spread"] for edge in status["edges"]] == [{"t": 3}]
    table = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert [line.split()[:3] for line in table.stdout.splitlines()
            if line.startswith("t ")] == [["t", "(3", "sub-queues)"]]
    assert "v0 settings; spread t 3" in table.stdout  # the edge's ROUTES column


def _spread_edge(deployment: Deployment) -> tuple[str, DistKeys]:
    """An edge spreading key ``t`` over 3 sub-queues, past its warm-up (all 3 in use)."""
    url = deployment.edge(CD_SPREAD="t=3", worker_timeout=20.0)
    keys = DistKeys(deployment.prefix)
    wait_for(lambda: deployment.integer("EXISTS", keys.spread("t", 3)) == 1,
             what="the edge's announcement")
    time.sleep(2.0)
    return url, keys


def _requests(url: str, paths: list[str]) -> tuple[list[threading.Thread], list[int]]:
    statuses: list[int] = []

    def call(path: str) -> None:
        statuses.append(httpx.get(url + path, timeout=30.0).status_code)

    threads = [threading.Thread(target=call, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # queued in order: one per sub-queue, in turn
    return threads, statuses


def test_requests_a_dead_worker_took_from_a_sub_queue_are_served_by_another(
        redis_single: Any, tmp_path: Path) -> None:
    """A worker that took a request and died before acknowledging it: its processing list on
    sub-queue 2 holds the request, and its id is in that sub-queue's registry, but it has no
    presence. A worker started then gives it back (the reaper covers every sub-queue) and
    serves it, once."""
    deployment = Deployment(redis_single.servers[0], tmp_path)
    try:
        url, keys = _spread_edge(deployment)
        names = sub_queues("t", 3)
        threads, statuses = _requests(url, [f"/t/mark?tag=d{i}" for i in range(3)])
        wait_for(lambda: all(deployment.integer("LLEN", keys.queue(name)) == 1
                             for name in names), what="one request on each sub-queue")
        dead = "w-dead-1"
        deployment.reply("LMOVE", keys.queue(names[2]), keys.processing(names[2], dead),
                         "LEFT", "RIGHT")
        deployment.reply("SADD", keys.registry(names[2]), dead)
        worker = deployment.worker("t")
        for thread in threads:
            thread.join(30.0)
        assert statuses == [200] * 3
        assert [len(deployment.recorded(f"ran-d{i}")) for i in range(3)] == [1] * 3
        assert deployment.integer("LLEN", keys.processing(names[2], dead)) == 0
        assert "gave 1 request(s) of dead worker w-dead-1" in worker.output()
    finally:
        deployment.close()


def test_a_draining_worker_leaves_every_sub_queues_requests_to_the_next(
        redis_single: Any, tmp_path: Path) -> None:
    """SIGTERM while one request runs and others wait on every sub-queue: the worker finishes
    the one it runs and exits; the others are served by the next worker, each once."""
    deployment = Deployment(redis_single.servers[0], tmp_path)
    try:
        url, keys = _spread_edge(deployment)
        first = deployment.worker("t", args=("--concurrency", "1"))
        wait_for(lambda: all(deployment.integer("SCARD", keys.registry(name)) == 1
                             for name in sub_queues("t", 3)), what="registered on 3 sub-queues")
        slow, slow_status = _requests(url, ["/t/slow?s=1.5&tag=x"])
        wait_for(lambda: deployment.recorded("slow-started-x"), what="the slow request")
        threads, statuses = _requests(url, [f"/t/mark?tag=q{i}" for i in range(6)])
        wait_for(lambda: sum(deployment.integer("LLEN", keys.queue(name))
                             for name in sub_queues("t", 3)) == 6, what="6 requests queued")
        first.signal(signal.SIGTERM)
        assert first.wait() == 0
        slow[0].join(30.0)
        assert slow_status == [200]
        assert not any(deployment.recorded(f"ran-q{i}") for i in range(6))
        deployment.worker("t")
        for thread in threads:
            thread.join(30.0)
        assert statuses == [200] * 6
        assert [len(deployment.recorded(f"ran-q{i}")) for i in range(6)] == [1] * 6
    finally:
        deployment.close()


def test_at_the_deadline_a_request_is_withdrawn_from_its_own_sub_queue(
        redis_single: Any, tmp_path: Path) -> None:
    """No worker: each request waits on one sub-queue and is given up there at its deadline
    (GIVE_UP over its sub-queue's queue and mark, one slot), so none is left to run late."""
    deployment = Deployment(redis_single.servers[0], tmp_path)
    try:
        url = deployment.edge(CD_SPREAD="t=3", worker_timeout=3.0)
        keys = DistKeys(deployment.prefix)
        wait_for(lambda: deployment.integer("EXISTS", keys.spread("t", 3)) == 1,
                 what="the edge's announcement")
        time.sleep(2.0)
        threads, statuses = _requests(url, [f"/t/mark?tag=g{i}" for i in range(3)])
        wait_for(lambda: all(deployment.integer("LLEN", keys.queue(name)) == 1
                             for name in sub_queues("t", 3)), what="one on each sub-queue")
        for thread in threads:
            thread.join(30.0)
        assert statuses == [503] * 3
        assert [deployment.integer("LLEN", keys.queue(name))
                for name in sub_queues("t", 3)] == [0, 0, 0]
    finally:
        deployment.close()


def test_a_drain_of_a_spread_key_moves_the_requests_of_every_sub_queue(
        private: Deployment) -> None:
    """Requests queued on each sub-queue of a drained spread key move into the key it is
    drained into; each runs once, and no sub-queue is left holding any."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    url = private.edge(worker_timeout=30, CD_SPREAD="k-a=3")
    keys = DistKeys(private.prefix)
    wait_for(lambda: private.integer("EXISTS", keys.spread("k-a", 3)) == 1,
             what="the edge's announcement")
    private.worker("k-a", args=("--concurrency", "1"))
    worker_b = private.worker("k-b", args=("--concurrency", "30"))
    time.sleep(2.0)  # past the edge's warm-up
    names = sub_queues("k-a", 3)
    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = [pool.submit(httpx.get, f"{url}/k/a/count?tag={i}&s=0.5", timeout=60)
                   for i in range(24)]
        lengths = lambda: [private.integer("LLEN", keys.queue(n)) for n in names]  # noqa: E731
        wait_for(lambda: min(lengths()) >= 3 and sum(lengths()) >= 18,
                 what="requests queued on every sub-queue")
        waiting = sum(lengths())
        urls = [part for u in private.redis.url.split() for part in ("--url", u)]
        subprocess.run([sys.executable, "-m", "channels_distributed.cli", "routes", *urls,
                        "--prefix", private.prefix, "drain", "k-a", "--into", "k-b"],
                       check=True, capture_output=True, timeout=60, env=private.env())
        responses = [future.result() for future in futures]
    assert [r.status_code for r in responses] == [200] * 24
    runs = Counter(line.partition(":")[0] for line in private.recorded("runs"))
    assert runs == Counter({str(i): 1 for i in range(24)})
    # Moved off all three sub-queues, not sub-queue 0 alone (worker k-a, one at a time, takes
    # a few more meanwhile).
    moved = sum(int(r.headers["x-worker-pid"]) == worker_b.popen.pid for r in responses)
    assert waiting >= 18 and moved >= waiting - 4, (waiting, moved)
    assert [private.integer("LLEN", keys.queue(n)) for n in names] == [0, 0, 0]
