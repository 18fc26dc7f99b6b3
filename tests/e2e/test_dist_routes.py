"""Routes that change live (docs/routes.rst), with real edges, workers and Redis: every edge
applies an override written by ``channels-distributed routes``; a switch and a drain under load
lose no request and run none twice (every run is counted at the workers); a drain with nowhere
to go ends the queued requests 503 with Retry-After, never run; a document written by hand that
the edges must not apply is logged once and ignored. Nothing here asserts a timing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from deployment import MANAGE, ROOT, Deployment, Proc
from helpers import wait_for

from channels_distributed.conf import parse_hosts
from channels_distributed.protocol.overrides import RouteOverrides, new_override
from channels_distributed.transport.overrides import change_overrides
from channels_distributed.transport.topology import Topology


def _routes(d: Deployment, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    urls = [part for url in d.redis.url.split() for part in ("--url", url)]
    done = subprocess.run([sys.executable, "-m", "channels_distributed.cli", "routes", *urls,
                           "--prefix", d.prefix, *args], capture_output=True, text=True,
                          timeout=60, env=d.env())
    assert done.returncode == expect, (done.stdout, done.stderr)
    return done


def _edge_cards(d: Deployment) -> list[dict[str, Any]]:
    members = d.reply("ZRANGE", f"{d.prefix}:directory", 0, -1)
    assert isinstance(members, list)
    cards = [d.reply("GET", f"{d.prefix}:{{p:{m.decode()}}}:card") for m in members]
    found = [json.loads(card) for card in cards if isinstance(card, bytes)]
    return [card for card in found if card["side"] == "edge"]


def _applied(d: Deployment, edges: int, version: int) -> None:
    def done() -> bool:
        cards = _edge_cards(d)
        return len(cards) == edges and all(c["routes_version"] == version for c in cards)

    wait_for(done, what=f"{edges} edges applying version {version}: {_edge_cards(d)}")


def _pid(response: httpx.Response) -> int:
    return int(response.headers["x-worker-pid"])


def _runs(d: Deployment) -> Counter[str]:
    """How many times each tag ran, whichever worker ran it."""
    return Counter(line.partition(":")[0] for line in d.recorded("runs"))


def _load(urls: list[str], count: int, seconds: float) -> tuple[ThreadPoolExecutor, list[Any]]:
    """``count`` requests of the ``count`` view (tags 0..count-1), all at once, spread over
    the edges ``urls``: their futures (each a response)."""
    pool = ThreadPoolExecutor(max_workers=count)
    futures = [pool.submit(httpx.get, f"{urls[i % len(urls)]}/k/a/count?tag={i}&s={seconds}",
                           timeout=60) for i in range(count)]
    return pool, futures


def _queued(d: Deployment, key: str) -> int:
    return d.integer("LLEN", f"{d.prefix}:{{rt:{key}}}:q")


def test_every_edge_applies_an_override_logs_it_and_status_shows_it(
        private: Deployment) -> None:
    logged, gunicorn = private.gunicorn_edge()  # logs INFO (gunicorn's error log)
    urls = [private.edge(), logged]
    worker_a, worker_b = private.worker("k-a"), private.worker("k-b")
    assert _pid(httpx.get(urls[0] + "/k/a/hello", timeout=10)) == worker_a.popen.pid
    _applied(private, 2, 0)
    written = _routes(private, "switch", "k-a", "k-b")
    assert "route overrides: version 1 written" in written.stderr
    assert "k-a                  switch to k-b" in written.stdout
    _applied(private, 2, 1)
    for url in urls:
        assert _pid(httpx.get(url + "/k/a/hello", timeout=10)) == worker_b.popen.pid
    assert "route key k-a: settings -> switch to k-b (routes version 0 -> 1, by " in (
        gunicorn.output())
    shown = json.loads(_routes(private, "--json").stdout)
    assert shown["overrides"]["version"] == 1
    assert shown["overrides"]["overrides"]["k-a"]["switch"] == "k-b"
    assert ["^/k/([a-z0-9]+)/", "k-\\1"] in shown["settings_routes"]
    assert [e["routes_version"] for e in shown["edges"]] == [1, 1]
    status = subprocess.run([sys.executable, "-m", "channels_distributed.cli", "status",
                             "--url", private.redis.url, "--prefix", private.prefix, "--json"],
                            capture_output=True, text=True, timeout=60, env=private.env())
    edges = json.loads(status.stdout)["edges"]
    assert [(e["routes_version"], e["overrides"]) for e in edges] == [
        (1, {"k-a": "switch to k-b"})] * 2
    _routes(private, "clear", "k-a")
    _applied(private, 2, 2)
    assert _pid(httpx.get(urls[1] + "/k/a/hello", timeout=10)) == worker_a.popen.pid


def test_a_split_through_a_real_edge_takes_its_exact_shares(private: Deployment) -> None:
    url = private.edge()
    workers = {private.worker("k-a").popen.pid: "k-a", private.worker("k-b").popen.pid: "k-b"}
    _routes(private, "set", "k-a", "k-a=3,k-b=1")
    _applied(private, 1, 1)
    served = Counter(workers[_pid(httpx.get(url + "/k/a/hello", timeout=10))]
                     for _ in range(40))
    assert served == {"k-a": 30, "k-b": 10}


def test_a_switch_under_load_loses_no_request_and_runs_none_twice(private: Deployment) -> None:
    urls = [private.edge(worker_timeout=30), private.edge(worker_timeout=30)]
    worker_a = private.worker("k-a", args=("--concurrency", "2"))
    worker_b = private.worker("k-b", args=("--concurrency", "20"))
    pool, futures = _load(urls, 40, 0.1)
    wait_for(lambda: _queued(private, "k-a") >= 10, what="requests queued on k-a")
    _routes(private, "switch", "k-a", "k-b")
    responses = [future.result() for future in futures]
    pool.shutdown()
    assert [r.status_code for r in responses] == [200] * 40
    assert _runs(private) == Counter({str(i): 1 for i in range(40)})
    # Queued before the switch, they were served where they were: k-a's worker.
    assert worker_a.popen.pid in {_pid(r) for r in responses}
    _applied(private, 2, 1)
    assert _pid(httpx.get(urls[0] + "/k/a/count?tag=after", timeout=10)) == worker_b.popen.pid


def test_a_drain_into_another_key_under_load_moves_the_queued_requests(
        private: Deployment) -> None:
    urls = [private.edge(worker_timeout=30), private.edge(worker_timeout=30)]
    worker_a = private.worker("k-a", args=("--concurrency", "1"))
    worker_b = private.worker("k-b", args=("--concurrency", "30"))
    pool, futures = _load(urls, 30, 0.5)
    wait_for(lambda: _queued(private, "k-a") >= 15, what="requests queued on k-a")
    _routes(private, "drain", "k-a", "--into", "k-b")
    responses = [future.result() for future in futures]
    pool.shutdown()
    assert [r.status_code for r in responses] == [200] * 30
    assert _runs(private) == Counter({str(i): 1 for i in range(30)})
    served = Counter(_pid(r) for r in responses)
    assert served[worker_b.popen.pid] >= 5  # moved off k-a, where 15 or more still waited
    assert set(served) == {worker_a.popen.pid, worker_b.popen.pid}
    assert _queued(private, "k-a") == 0


def test_a_drain_with_nowhere_to_go_ends_the_queued_requests_503_unrun(
        private: Deployment) -> None:
    urls = [private.edge(worker_timeout=30), private.edge(worker_timeout=30)]
    worker = private.worker("k-a", args=("--concurrency", "1"))
    pool, futures = _load(urls, 20, 1.0)
    wait_for(lambda: _queued(private, "k-a") >= 10, what="requests queued on k-a")
    _routes(private, "drain", "k-a")
    responses = [future.result() for future in futures]
    pool.shutdown()
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 503} and statuses[503] >= 5
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    ran = _runs(private)
    assert set(ran.values()) == {1}  # none twice
    # Every request that was answered 200 ran, and none answered 503 did.
    assert set(ran) == {str(i) for i, r in enumerate(responses) if r.status_code == 200}
    assert _queued(private, "k-a") == 0
    # A new request is refused at once, never queued; the edges count it as drained.
    refused = httpx.get(urls[0] + "/k/a/count?tag=new", timeout=10)
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert "new" not in _runs(private)
    wait_for(lambda: sum(c["failures"].get("drained", 0) for c in _edge_cards(private))
             == statuses[503] + 1, what=f"the drained ones counted: {_edge_cards(private)}")
    _routes(private, "clear", "--all")
    _applied(private, 2, 2)
    assert _pid(httpx.get(urls[1] + "/k/a/count?tag=back", timeout=10)) == worker.popen.pid


def _refusals(edge: Proc) -> int:
    return edge.output().count("route overrides in ")


def test_a_bad_document_written_by_hand_is_logged_once_and_the_edge_keeps_serving(
        private: Deployment) -> None:
    url = private.edge()
    (edge,) = [proc for proc in private.procs if "uvicorn" in proc.popen.args]
    private.worker("k-a")
    worker_b = private.worker("k-b")
    _routes(private, "switch", "k-a", "k-b")
    _applied(private, 1, 1)
    bad = json.dumps({"version": 2, "overrides": {"k-a": {"split": {"k-a": 0, "k-b": 5}}}})
    private.reply("SET", f"{private.prefix}:routes", bad)
    wait_for(lambda: _refusals(edge) == 1, what=f"the refusal logged:\n{edge.output()}")
    line = next(line for line in edge.output().splitlines() if "route overrides in " in line)
    assert "refused, the overrides of version 1 stay in force" in line
    assert "whole number from 1" in line
    # Polled again and again (the card is rewritten every second): logged once, still serving.
    at = max(card["at"] for card in _edge_cards(private))
    wait_for(lambda: min(c["at"] for c in _edge_cards(private)) > at + 2,
             what="two more seconds of polls")
    assert _refusals(edge) == 1
    assert _pid(httpx.get(url + "/k/a/hello", timeout=10)) == worker_b.popen.pid
    assert _edge_cards(private)[0]["routes_version"] == 1
    shown = _routes(private, "set", "k-a", "k-b=1", expect=2)
    assert "refused by the edges" in shown.stderr and "routes clear --all" in shown.stderr
    assert "OVERRIDES: REFUSED" in _routes(private).stdout
    _routes(private, "clear", "--all")
    _applied(private, 1, 3)


def test_the_command_refuses_a_bad_override_and_writes_nothing(private: Deployment) -> None:
    for args, fault in ((("set", "k-a", "k-a=95,k-b=0"), "whole number from 1"),
                        (("set", "k-a", "k-a=95;k-b=5"), "whole number from 1"),
                        (("set", "k-a", "k-a"), "expected key=weight"),
                        (("switch", "k-a", "k-a"), "into itself"),
                        (("drain", "k/a"), "not a valid route key"),
                        (("clear",), "a route key, or --all")):
        refused = _routes(private, *args, expect=2)
        assert "refused" in refused.stderr and fault in refused.stderr, refused.stderr
    _routes(private, "switch", "k-a", "k-b")
    refused = _routes(private, "drain", "k-b", "--into", "k-a", expect=2)
    assert "a cycle" in refused.stderr
    assert json.loads(private.reply("GET", f"{private.prefix}:routes"))["version"] == 1


def test_the_command_warns_of_a_key_no_worker_serves_and_writes_the_change(
        private: Deployment) -> None:
    private.worker("k-b")
    registry = f"{private.prefix}:{{rt:k-b}}:w"
    wait_for(lambda: int(private.reply("SCARD", registry)) > 0, what="k-b's worker registered")
    served = _routes(private, "switch", "k-a", "k-b")
    assert "warning" not in served.stderr, served.stderr
    unserved = _routes(private, "set", "k-a", "k-b=9,k-none=1")
    assert "no worker is registered for route key k-none" in unserved.stderr, unserved.stderr
    assert "route key k-b" not in unserved.stderr, unserved.stderr
    assert json.loads(private.reply("GET", f"{private.prefix}:routes"))["version"] == 2


def test_two_writers_never_overwrite_each_other_unseen(private: Deployment) -> None:
    key = f"{private.prefix}:routes"
    calls: list[int] = []

    def change(document: RouteOverrides, by: str, at: float) -> RouteOverrides:
        calls.append(document.version)
        if len(calls) == 1:  # another operator writes between our read and our write
            other = document.changed("k-x", new_override("k-x", "switch", "k-y"), "other", at)
            private.reply("SET", key, other.dumps())
        return document.changed("k-a", new_override("k-a", "drain", None), by, at)

    async def write() -> RouteOverrides:
        topology = Topology(parse_hosts([private.redis.url]), 3.0)
        try:
            return await change_overrides(topology.shard_for(key), key, change)
        finally:
            await topology.close()

    written = asyncio.run(write())
    assert calls == [0, 1]  # made again on the other operator's version
    assert written.version == 2 and set(written.overrides) == {"k-a", "k-x"}
    assert json.loads(private.reply("GET", key))["version"] == 2


def test_on_a_redis_cluster_a_split_and_a_drain_across_slots(redis_cluster: Any,
                                                            tmp_path: Path) -> None:
    # k-a's and k-b's queues live on different primaries (slots 14777 and 2522 of three even
    # ranges): a move is an LREM on one primary and a push on another, never one script.
    d = Deployment(redis_cluster.cluster, tmp_path)
    try:
        url = d.edge(worker_timeout=30)
        worker_a = d.worker("k-a", args=("--concurrency", "1"))
        worker_b = d.worker("k-b", args=("--concurrency", "20"))
        _routes(d, "set", "k-a", "k-a=1,k-b=1")
        _applied(d, 1, 1)
        served = Counter(_pid(httpx.get(url + "/k/a/hello", timeout=10)) for _ in range(10))
        assert served == {worker_a.popen.pid: 5, worker_b.popen.pid: 5}
        _routes(d, "clear", "k-a")
        _applied(d, 1, 2)
        pool, futures = _load([url], 16, 0.5)
        wait_for(lambda: _queued(d, "k-a") >= 8, what="requests queued on k-a")
        _routes(d, "drain", "k-a", "--into", "k-b")
        responses = [future.result() for future in futures]
        pool.shutdown()
        assert [r.status_code for r in responses] == [200] * 16
        assert _runs(d) == Counter({str(i): 1 for i in range(16)})
        assert worker_b.popen.pid in {_pid(r) for r in responses}
    finally:
        d.close()


def test_manage_py_distributed_routes_uses_the_projects_redis_and_routes(
        private: Deployment) -> None:
    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MANAGE, "distributed_routes", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, env=private.env())

    done = manage("switch", "api", "api-v2")
    assert done.returncode == 0, done.stderr
    shown = json.loads(manage("--json").stdout)
    assert shown["settings_routes"] == [["^/chat/", "chat"], ["^/ws/chat/", "chat"],
                                        ["^/api/", "api"], ["^/", "site"]]
    assert shown["overrides"]["version"] == 1
    assert shown["overrides"]["overrides"]["api"]["switch"] == "api-v2"
    refused = manage("set", "api", "api=1,api-v2=-1")
    assert refused.returncode == 2 and "whole number from 1" in refused.stderr
    assert json.loads(private.reply("GET", f"{private.prefix}:routes"))["version"] == 1
