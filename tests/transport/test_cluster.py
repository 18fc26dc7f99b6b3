"""The Redis Cluster slot map, in memory: CLUSTER SHARDS parsed, shards anchored through a
failover and a resharding, and the slot boundaries placed where the cluster has them."""

from __future__ import annotations

from typing import Any

from channels_distributed.conf.hosts import HostSpec
from channels_distributed.exceptions import ReplyError
from channels_distributed.protocol.keys import key_slot
from channels_distributed.transport.cluster import ClusterMap, parse_shards, redirection


def _node(port: int, role: str = "master", health: str = "online") -> list[Any]:
    return [b"id", b"x" * 40, b"port", port, b"ip", b"10.0.0.1", b"endpoint", b"10.0.0.1",
            b"role", role.encode(), b"replication-offset", 0, b"health", health.encode()]


def _shard(ranges: list[int], *nodes: list[Any]) -> list[Any]:
    return [b"slots", ranges, b"nodes", list(nodes)]


THREE = [
    _shard([5461, 10922], _node(7001), _node(7004, "replica")),
    _shard([0, 5460], _node(7000), _node(7003, "replica")),
    _shard([10923, 16383], _node(7002)),
    _shard([], _node(7009, "master", "failed")),  # a dead primary that lost its slots
]


def test_shards_are_parsed_and_ordered_by_first_slot() -> None:
    shards = parse_shards(THREE)
    assert [s.ranges for s in shards] == [((0, 5460),), ((5461, 10922),), ((10923, 16383),)]
    assert [s.primary.port for s in shards] == [7000, 7001, 7002]  # type: ignore[union-attr]
    assert shards[0].nodes[1].primary is False


def test_keys_are_placed_by_the_cluster_map_not_by_an_even_split() -> None:
    # An even split of 3 (slot * 3 // 16384) puts slot 5461 on the first shard; this cluster
    # serves it on the second (the "one channel in 31 always fails").
    cluster = ClusterMap([HostSpec()], parse_shards(THREE))
    assert cluster.table[5460] == 0 and cluster.table[5461] == 1
    assert cluster.table[10922] == 1 and cluster.table[10923] == 2
    key = next(f"k{i}" for i in range(100_000) if key_slot(f"k{i}") == 5461)
    assert cluster.table[key_slot(key)] == 1


def test_a_promoted_replica_serves_the_same_shard() -> None:
    cluster = ClusterMap([HostSpec(password="pw")], parse_shards(THREE))
    promoted = [_shard([0, 5460], _node(7003), _node(7000, "master", "failed")), *THREE[:1],
                *THREE[2:3]]
    assert cluster.update(parse_shards(promoted)) == []
    assert cluster.address(0) == ("10.0.0.1", 7003)
    spec = cluster.spec_for(0)
    assert (spec.port, spec.password, spec.cluster) == (7003, "pw", True)


def test_while_no_replica_is_promoted_the_shard_has_no_address() -> None:
    cluster = ClusterMap([HostSpec()], parse_shards(THREE))
    cluster.update(parse_shards([_shard([0, 5460], _node(7000, "master", "failed"))]))
    try:
        cluster.address(0)
    except ConnectionError as exc:  # RedisUnavailable: transient, the shard asks again
        assert "failover" in str(exc)
    else:
        raise AssertionError("a failed primary was given as the address")


def test_a_resharding_moves_slots_and_adds_new_primaries() -> None:
    cluster = ClusterMap([HostSpec()], parse_shards(THREE))
    moved = [_shard([0, 4999], _node(7000)), _shard([5000, 5460, 5461, 10922], _node(7001)),
             *THREE[2:3], _shard([], _node(7005))]
    assert cluster.update(parse_shards(moved)) == []
    assert cluster.table[5000] == 1 and cluster.table[4999] == 0
    grown = [*moved[:3], _shard([16000, 16383], _node(7005))]
    grown[2] = _shard([10923, 15999], _node(7002))
    assert cluster.update(parse_shards(grown)) == [3]
    assert cluster.table[16383] == 3 and cluster.address(3) == ("10.0.0.1", 7005)


def test_redirections_are_told_from_other_errors() -> None:
    assert redirection(ReplyError("MOVED 3999 10.0.0.2:6381")) == ("MOVED", "10.0.0.2", 6381)
    assert redirection(ReplyError("ASK 3999 node-2.example:6381")) == (
        "ASK", "node-2.example", 6381)
    assert redirection(ReplyError("ASK 3999 [::1]:6381")) == ("ASK", "[::1]", 6381)
    assert redirection(ReplyError("ERR MOVED")) is None
    assert redirection(ReplyError("CROSSSLOT Keys in request don't hash")) is None
    assert redirection(ValueError("MOVED 1 h:1")) is None
