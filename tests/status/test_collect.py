"""``status.collect()`` on every topology, on what the test wrote itself: cards and the directory,
route queues, registries and processing lists, channels and groups. The same figures from real
edges and workers: test_status_processes.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import unique_prefix
from status_cards import Writer, edge_card, validate, worker_card

from channels_distributed.conf import parse_hosts
from channels_distributed.status import collect
from channels_distributed.transport.topology import Topology


@pytest.fixture
async def redis(topology: Any) -> AsyncIterator[Topology]:
    """The test's own view of the topology (the servers are the session's)."""
    made = Topology(parse_hosts(topology.hosts), 2.0)
    yield made
    await made.close()


@pytest.fixture
def writer(redis: Topology) -> Writer:
    return Writer(redis, unique_prefix())


async def test_routes_workers_and_edges_from_cards_and_queues(redis: Topology,
                                                              writer: Writer) -> None:
    now_ms = int(time.time() * 1000)
    await writer.card(worker_card("w-a-1-x", {"api": {"in_flight": 3, "served": 40,
                                                      "errors": 1}}, host="a", pid=1))
    await writer.card(worker_card("w-b-2-x", {"api": {"in_flight": 0, "served": 2},
                                              "site": {"served": 5}}, host="b", pid=2,
                                  state="draining"))
    await writer.card(edge_card("d-e-9-x", {"api": {"requests": 50, "served": 42, "failures": {
        "busy": 2}}}, host="e", pid=9, open=4))
    await writer.card(edge_card("d-f-8-x", {"api": {"requests": 7, "served": 5, "failures": {
        "busy": 1, "worker_lost": 1}}}, host="f", pid=8))
    await writer.listed("w-gone-3-x")  # in the directory, its card expired: gone
    for _ in range(2):
        await writer.queue("api", q=now_ms - 2500)
    await writer.register("api", "w-a-1-x", taken=1)
    await writer.register("api", "w-dead-7-x", taken=2)  # gone, its requests not reaped yet

    status = await collect(redis, writer.prefix)

    validate(status)
    assert status["schema_version"] == 1 and status["prefix"] == writer.prefix
    assert set(status["routes"]) == {"api", "site"}
    api = status["routes"]["api"]
    assert [(w["host"], w["pid"], w["in_flight"], w["served"], w["errors"], w["concurrency"])
            for w in api["workers"]] == [("a", 1, 3, 40, 1, 8), ("b", 2, 0, 2, 0, 8)]
    assert api["workers"][0]["up_s"] >= 125 and api["workers"][1]["state"] == "draining"
    assert (api["queued"], api["taken"], api["in_flight"]) == (2, 3, 3)
    assert api["oldest_s"] >= 2.5
    # The draining worker's slots are not capacity any more: 8, not 16.
    assert (api["concurrency"], api["saturation"]) == (8, round((2 + 3) / 8, 3))
    assert (api["requests"], api["served"], api["failures"]) == (57, 47, {"busy": 3,
                                                                          "worker_lost": 1})
    site = status["routes"]["site"]
    assert (site["queued"], site["oldest_s"], site["taken"], site["requests"]) == (0, None, 0, 0)
    assert [w["id"] for w in site["workers"]] == ["w-b-2-x"]
    assert [(e["host"], e["open"], e["requests"], e["failures"]) for e in status["edges"]] == [
        ("e", 4, 50, {"busy": 2}), ("f", 0, 7, {"busy": 1, "worker_lost": 1})]


async def test_a_queue_nobody_serves_is_found_on_every_server(redis: Topology,
                                                              writer: Writer) -> None:
    """No card names these route keys: only the scan finds their queues, one on each server
    (each primary of a cluster)."""
    wanted: dict[int, str] = {}
    index = 0
    while len(wanted) < len(redis.shards):
        name = f"orphan{index}"
        wanted.setdefault(redis.shard_for(writer.keys.queue(name)).index, name)
        index += 1
    for name in wanted.values():
        await writer.queue(name, q=int(time.time() * 1000) - 1000)
    status = await collect(redis, writer.prefix)
    validate(status)
    assert set(status["routes"]) == set(wanted.values())
    for route in status["routes"].values():
        assert (route["queued"], route["workers"], route["concurrency"]) == (1, [], 0)
        assert route["oldest_s"] >= 1.0 and route["saturation"] == 1.0  # / 1: no worker


async def test_the_oldest_entry_without_its_queueing_time(redis: Topology,
                                                          writer: Writer) -> None:
    """An edge that does not stamp "q": the deadline minus the worker_timeout of the edge that
    queued it (its card says 10 s), or 5 s when that edge is gone."""
    now_ms = int(time.time() * 1000)
    await writer.card(edge_card("d-e-1-x", {"k": {"requests": 1}}, worker_timeout=10.0))
    await writer.queue("k", o="d-e-1-x", d=now_ms - 4000 + 10_000)
    await writer.queue("gone", o="d-gone-2-x", d=now_ms - 3000 + 5000)
    status = await collect(redis, writer.prefix)
    assert 4.0 <= status["routes"]["k"]["oldest_s"] < 60
    assert 3.0 <= status["routes"]["gone"]["oldest_s"] < 60


async def test_the_layers_deepest_channels_and_largest_groups(redis: Topology,
                                                              writer: Writer) -> None:
    for name, depth in (("chat", 5), ("tasks", 2), ("mail", 9), ("specific.abc!x1", 3)):
        await writer.channel(name, depth)
    for name, members in (("room", 4), ("lobby", 7), ("quiet", 1)):
        await writer.group(name, members)
    status = await collect(redis, writer.prefix, top=2)
    validate(status)
    layer = status["layer"]
    # Process-local channels wait in one list per owner: listed as "owner!".
    assert layer["channels"] == [{"name": "mail", "queued": 9}, {"name": "chat", "queued": 5}]
    assert layer["groups"] == [{"name": "lobby", "members": 7}, {"name": "room", "members": 4}]
    assert (layer["scanned"], layer["complete"]) == (7, True)
    everything = await collect(redis, writer.prefix)
    assert {c["name"] for c in everything["layer"]["channels"]} == {
        "chat", "tasks", "mail", "specific.abc!"}


async def test_nothing_under_the_prefix(redis: Topology, writer: Writer) -> None:
    status = await collect(redis, writer.prefix)
    validate(status)
    assert (status["routes"], status["edges"]) == ({}, [])
    assert status["layer"] == {"channels": [], "groups": [], "scanned": 0, "complete": True}


async def test_a_worker_that_took_nothing_yet_is_found_by_its_registration(
        redis: Topology, writer: Writer) -> None:
    """A worker names a route key in its card once it took a request there; before that its
    registration shows it. A registry of workers that are all gone names no route key."""
    await writer.card(worker_card("w-idle-1-x", {}, host="idle", pid=1))
    await writer.register("quiet", "w-idle-1-x")
    await writer.register("stale", "w-dead-2-x")
    status = await collect(redis, writer.prefix)
    validate(status)
    assert list(status["routes"]) == ["quiet"]
    quiet = status["routes"]["quiet"]
    assert [(w["host"], w["in_flight"], w["served"]) for w in quiet["workers"]] == [
        ("idle", 0, 0)]
    assert (quiet["concurrency"], quiet["saturation"]) == (8, 0.0)


async def test_an_entry_stamped_zero_reads_its_deadline(redis: Topology, writer: Writer) -> None:
    now_ms = int(time.time() * 1000)
    await writer.queue("k", q=0, d=now_ms - 2000 + 5000)
    status = await collect(redis, writer.prefix)
    assert 2.0 <= status["routes"]["k"]["oldest_s"] < 60


async def test_an_odd_card_reads_as_zeros_and_hides_nothing(redis: Topology,
                                                            writer: Writer) -> None:
    """A card of another version of the package, or a broken one: each field is read for the
    type it should have (else zero or empty); a value that is not a JSON object is skipped."""
    odd = {"id": "w-odd-1-x", "side": "worker", "host": 7, "pid": "12", "concurrency": True,
           "routes": ["api"], "started": "yesterday", "state": None, "new_field": {"x": 1}}
    await writer.card(odd)
    await writer.register("api", "w-odd-1-x")
    broken = writer.keys.card("w-broken-2-x")
    await writer.run(broken, "SET", broken, b"\xff not json", "PX", 3000)
    await writer.listed("w-broken-2-x")
    edge = edge_card("d-e-3-x", {}, failures={"busy": "2", "redis": 1})
    edge["routes"] = {"api": {"requests": "many", "failures": [1]}}
    await writer.card(edge)
    status = await collect(redis, writer.prefix)
    validate(status)
    [worker] = status["routes"]["api"]["workers"]
    assert (worker["id"], worker["host"], worker["pid"], worker["concurrency"], worker["state"],
            worker["up_s"]) == ("w-odd-1-x", "", 0, 0, "", 0.0)
    assert status["routes"]["api"]["requests"] == 0
    assert status["edges"][0]["failures"] == {"redis": 1}


async def test_a_spread_route_is_one_route_with_its_sub_queues(redis: Topology,
                                                               writer: Writer) -> None:
    from channels_distributed.protocol.spread import sub_queues

    now_ms = int(time.time() * 1000)
    await writer.card(worker_card("w-a-1-x", {"api": {"served": 1}}, host="a", pid=1))
    names = sub_queues("api", 3)
    await writer.queue(names[0], q=now_ms - 1000)
    await writer.queue(names[2], q=now_ms - 4000)  # the oldest waits on sub-queue 2
    await writer.queue(names[2], q=now_ms - 500)
    await writer.register(names[1], "w-a-1-x", taken=2)

    status = await collect(redis, writer.prefix)

    validate(status)
    assert set(status["routes"]) == {"api"}  # no sub-queue listed as a route of its own
    api = status["routes"]["api"]
    assert (api["queued"], api["taken"]) == (3, 2)
    assert 3.5 <= api["oldest_s"] < 30
    assert api["spread"] == []  # no live edge says it spreads the key


async def test_the_edges_spread_of_a_route_and_its_sub_queues_past_the_scan(
        redis: Topology, writer: Writer) -> None:
    """The edges' cards say which keys they spread: the route lists the counts, and the
    sub-queues they name are read even when the scan stops before reaching them."""
    from channels_distributed.protocol.spread import sub_queues

    await writer.card(edge_card("d-e-9-x", {}, host="e", pid=9, spread={"api": 3}))
    await writer.card(edge_card("d-f-8-x", {"api": {"requests": 2}}, host="f", pid=8))
    for index, name in enumerate(sub_queues("api", 3)):
        for _ in range(index + 1):
            await writer.queue(name)
    for number in range(300):  # keys enough that a scan of about one key misses some
        await writer.channel(f"filler{number}", 1)

    status = await collect(redis, writer.prefix, top=0, scan_limit=1)

    validate(status)
    assert status["layer"]["complete"] is False
    assert set(status["routes"]) == {"api"}
    assert status["routes"]["api"]["queued"] == 1 + 2 + 3
    assert status["routes"]["api"]["spread"] == [3, 1]  # edge f queues it unspread
    assert [(e["host"], e["spread"]) for e in status["edges"]] == [("e", {"api": 3}),
                                                                   ("f", {})]
