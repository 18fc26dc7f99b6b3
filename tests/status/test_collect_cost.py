"""What ``collect()`` asks of Redis: reads only, never KEYS, a bounded SCAN, a few pipelines.
Counted by the server itself (INFO commandstats), on a server of the test's own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from helpers import unique_prefix
from status_cards import Writer, edge_card, worker_card

from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import RedisServer
from channels_distributed.exceptions import ReplyError
from channels_distributed.status import collect
from channels_distributed.status.reads import SCAN_BATCH, STATUS_ACL
from channels_distributed.transport.topology import Topology

# What the status may send (and INFO, which the test sends to count).
READS = {"get", "zrange", "llen", "lindex", "smembers", "scard", "zcard", "scan", "info"}


def calls(server: RedisServer) -> dict[str, int]:
    text = server.command("INFO", "commandstats").decode()
    return {name: int(count) for name, count in re.findall(r"cmdstat_([^:]+):calls=(\d+)", text)}


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: n - before.get(name, 0) for name, n in after.items()
            if n != before.get(name, 0) and name != "info"}


@pytest.fixture
async def redis(redis_fresh: RedisServer) -> AsyncIterator[tuple[RedisServer, Topology]]:
    made = Topology(parse_hosts([redis_fresh.url]), 2.0)
    yield redis_fresh, made
    await made.close()


async def test_reads_only_and_a_few_commands_per_key(
        redis: tuple[RedisServer, Topology]) -> None:
    server, topology = redis
    writer = Writer(topology, unique_prefix())
    for index in range(3):
        await writer.card(worker_card(f"w-h-{index}-x", {"api": {"served": 1}}))
        await writer.register("api", f"w-h-{index}-x", taken=1)
    await writer.card(edge_card("d-h-9-x", {"api": {"requests": 3}, "site": {"requests": 1}}))
    await writer.queue("api")
    for index in range(20):
        await writer.channel(f"c{index}", 1)
        await writer.group(f"g{index}", 2)
    await collect(topology, writer.prefix)  # the connection is open: only the reads count
    before = calls(server)
    status = await collect(topology, writer.prefix)
    used = spent(before, calls(server))
    assert set(used) <= READS, used
    # The directory, 4 cards; per route key (api, site) LLEN + LINDEX + SMEMBERS and one LLEN
    # per worker it has (api: 3); one LLEN or ZCARD per channel and group; one SCAN.
    assert used == {"zrange": 1, "get": 4, "llen": 2 + 3 + 20, "lindex": 2, "smembers": 2,
                    "zcard": 20, "scan": 1}
    assert status["routes"]["api"]["taken"] == 3


async def test_the_scan_stops_at_its_limit(redis: tuple[RedisServer, Topology]) -> None:
    server, topology = redis
    writer = Writer(topology, unique_prefix())
    link = await topology.shards[0].link()
    for start in range(0, 5000, 500):
        await link.call("MSET", *[part for i in range(start, start + 500)
                                  for part in (f"{writer.prefix}:{{c:n{i}}}x", "1")])
    await writer.channel("deep", 3)  # (the others are strings: keys, not channels)
    before = calls(server)
    partial = await collect(topology, writer.prefix, scan_limit=1500)
    used = spent(before, calls(server))
    assert used["scan"] == 2  # 1000 + 500 keys examined
    assert not partial["layer"]["complete"] and 0 < partial["layer"]["scanned"] < 5001
    before = calls(server)
    whole = await collect(topology, writer.prefix)
    assert spent(before, calls(server))["scan"] <= 5001 // SCAN_BATCH + 2
    assert whole["layer"]["complete"] and whole["layer"]["scanned"] == 5001
    assert whole["layer"]["channels"] == [{"name": "deep", "queued": 3}]


async def test_top_zero_reads_no_channel_or_group(redis: tuple[RedisServer, Topology]) -> None:
    """``--top 0``: the scan still finds route queues, and no channel or group is sized."""
    server, topology = redis
    writer = Writer(topology, unique_prefix())
    for index in range(50):
        await writer.channel(f"c{index}", 1)
        await writer.group(f"g{index}", 1)
    await writer.queue("orphan")
    await collect(topology, writer.prefix)
    before = calls(server)
    status = await collect(topology, writer.prefix, top=0)
    used = spent(before, calls(server))
    assert used == {"zrange": 1, "scan": 1, "llen": 1, "lindex": 1, "smembers": 1}
    assert list(status["routes"]) == ["orphan"]
    assert status["layer"] == {"channels": [], "groups": [], "scanned": 101, "complete": True}


async def test_the_documented_acl_is_enough(redis: tuple[RedisServer, Topology]) -> None:
    """A user with STATUS_ACL (docs/status.rst) reads the whole status; it may write nothing."""
    server, topology = redis
    writer = Writer(topology, unique_prefix())
    await writer.card(worker_card("w-h-1-x", {"api": {"served": 1}}))
    await writer.register("api", "w-h-1-x", taken=1)
    await writer.queue("api")
    await writer.channel("chat", 2)
    await writer.group("room", 3)
    rules = STATUS_ACL.replace("~asgi:*", f"~{writer.prefix}:*").split()
    server.command("ACL", "SETUSER", "status", "on", ">secret", *rules)
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    reader = Topology(parse_hosts([f"redis://status:secret@{host}:{port}/0"]), 2.0)
    try:
        status = await collect(reader, writer.prefix)
        link = await reader.shards[0].link()
        with pytest.raises(ReplyError, match="NOPERM"):
            await link.call("SET", f"{writer.prefix}:x", "1")
    finally:
        await reader.close()
    assert status["routes"]["api"]["taken"] == 1 and status["layer"]["groups"]
