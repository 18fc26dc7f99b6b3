"""A slot migrated between two primaries while a layer uses it: ASK, then MOVED, are followed.

While the slot is migrating, keys the source no longer holds are answered with ASK: a send and a
group_add to them go to the target after ASKING. Once the slot is the target's, the source
answers MOVED: sends, the group calls and a waiting receive() follow the slot to the target,
and nothing is lost or delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from helpers import wait_for_async

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisCluster, RedisServer
from channels_distributed.protocol.keys import key_slot

pytestmark = pytest.mark.processes  # a cluster of its own: it moves slots (tests/tiers.py)

WAIT = 10.0
PREFIX = "mig"


@pytest.fixture
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster(2) as made:
        yield made


def _id(node: RedisServer) -> str:
    return node.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()


def _names(slot: int, count: int, kind: str) -> list[str]:
    """``count`` channel (kind 'c') or group ('g') names whose keys are in ``slot``."""
    found = []
    for i in range(1_000_000):
        if key_slot(f"{PREFIX}:{{{kind}:n{i}}}") == slot:
            found.append(f"n{i}")
            if len(found) == count:
                return found
    raise AssertionError(f"no names in slot {slot}")


async def test_sends_groups_and_receives_follow_a_migrating_slot(cluster: RedisCluster) -> None:
    source, target = cluster.primaries
    old, fresh, late = _names(100, 3, "c")  # slot 100: served by the first primary
    [group] = _names(100, 1, "g")
    layer = RedisChannelLayer(hosts=[cluster.url], prefix=PREFIX)
    await layer.send(old, {"n": 1})
    member = await layer.new_channel()

    slot = 100
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", _id(source))
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", _id(target))
    # Keys the source does not hold are ASKed to the target.
    await layer.send(fresh, {"n": 2})
    await layer.group_add(group, member)
    assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) == b":2\r\n"  # fresh, group

    waiting = asyncio.ensure_future(layer.receive(late))  # parked on the source
    await asyncio.sleep(0.1)
    source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS",
                   f"{PREFIX}:{{c:{old}}}")
    for node in (target, source):
        node.command("CLUSTER", "SETSLOT", slot, "NODE", _id(target))
    # The source answers MOVED now: everything follows the slot.
    await layer.send(late, {"n": 3})
    await layer.group_send(group, {"n": 4})
    assert (await asyncio.wait_for(waiting, WAIT)) == {"n": 3}
    assert (await asyncio.wait_for(layer.receive(old), WAIT)) == {"n": 1}
    assert (await asyncio.wait_for(layer.receive(fresh), WAIT)) == {"n": 2}
    assert (await asyncio.wait_for(layer.receive(member), WAIT)) == {"n": 4}
    await layer.group_discard(group, member)
    await layer.flush()
    await layer.close()
    assert cluster.keys(f"{PREFIX}:*") == []


async def test_a_graceful_failover_is_followed() -> None:
    """CLUSTER FAILOVER on a replica: the old primary stays up as a replica and answers MOVED
    (and unblocks the pops waiting on it); the layer reconnects its shard to the new primary,
    and a waiting receive() gets the next message."""
    with RedisCluster(2, replicas=1) as cluster:
        layer = RedisChannelLayer(hosts=[cluster.url], prefix=PREFIX)
        [name] = _names(100, 1, "c")  # the first primary's; its replica is nodes[2]
        await layer.send(name, {"n": 1})
        assert (await asyncio.wait_for(layer.receive(name), WAIT)) == {"n": 1}
        waiting = asyncio.ensure_future(layer.receive(name))
        await asyncio.sleep(0.1)
        replica = cluster.nodes[2]
        assert replica.command("CLUSTER", "FAILOVER") == b"+OK\r\n"
        await wait_for_async(lambda: b"role:master" in replica.command("INFO", "replication"),
                             WAIT, "the replica to take over")
        await layer.send(name, {"n": 2})
        assert (await asyncio.wait_for(waiting, WAIT)) == {"n": 2}
        assert replica.command("EXISTS", f"{PREFIX}:{{c:{name}}}") == b":0\r\n"  # taken
        await layer.flush()
        await layer.close()
