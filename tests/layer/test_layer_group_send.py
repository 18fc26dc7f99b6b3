"""group_send as a script: one call per message on one server, a script on the group's slot and
one push per list elsewhere. What users rely on: the members a send reaches are the members as
group_add, group_discard and the group expiry left them (the group's lists key is never stale),
a sender's order holds, the entries are the layer's entry format byte for byte, and a message or
a member list over max_message_size raises with nothing pushed."""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import pytest

from channels_distributed import RedisChannelLayer
from channels_distributed.exceptions import MessageTooLarge
from channels_distributed.protocol.codec import decode_entry, encode_entry
from channels_distributed.protocol.keys import SLOTS, key_slot, local_owner

WAIT = 5.0


async def receive(layer: RedisChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


async def nothing_on(layer: RedisChannelLayer, channel: str, within: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), within)
    except asyncio.TimeoutError:
        return True
    return False


def command(topology: Any, key: str, *args: Any) -> Any:
    """Run a command on the server of ``key`` (cluster: MOVED followed; sharded: by slot)."""
    if topology.cluster is not None:
        raw = topology.cluster.command(*args)
    else:
        servers = topology.servers
        raw = servers[key_slot(key) * len(servers) // SLOTS].command(*args)
    reader = hiredis.Reader()
    reader.feed(raw)
    return reader.gets()


async def test_a_send_reaches_the_members_as_they_are_now(make_layer) -> None:
    layer = make_layer(group_expiry=10)
    now = [1_000_000.0]
    layer.clock = lambda: now[0]
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", first)
    await layer.group_send("g", {"n": 1})
    await layer.group_add("g", second)
    await layer.group_add("g", "plain-member")
    await layer.group_send("g", {"n": 2})
    await layer.group_discard("g", first)
    await layer.group_send("g", {"n": 3})
    now[0] += 6
    await layer.group_add("g", second)  # re-joins; plain-member does not
    now[0] += 6
    await layer.group_send("g", {"n": 4})  # plain-member's membership expired meanwhile
    assert [(await receive(layer, first))["n"] for _ in range(2)] == [1, 2]
    assert [(await receive(layer, second))["n"] for _ in range(3)] == [2, 3, 4]
    assert [(await receive(layer, "plain-member"))["n"] for _ in range(2)] == [2, 3]
    assert await nothing_on(layer, first) and await nothing_on(layer, "plain-member")
    await layer.group_discard("g", second)
    await layer.group_send("g", {"n": 5})  # an empty group: reaches nobody, raises nothing
    assert await nothing_on(layer, second)
    await layer.flush()
    await layer.close()


async def test_the_lists_key_never_outlives_its_group(topology, make_layer) -> None:
    layer = make_layer(group_expiry=600)
    member = await layer.new_channel()
    await layer.group_add("g", member)
    await layer.group_send("g", {"n": 1})
    group, lists = layer.keys.group("g"), layer.keys.group_lists("g")
    group_ttl = command(topology, group, "PTTL", group)  # read first: it only goes down
    assert 0 < command(topology, lists, "PTTL", lists) <= group_ttl
    # The group gone (evicted, deleted by hand) while its lists key is not: a send reaches
    # nobody, and the lists key goes too.
    command(topology, group, "DEL", group)
    await layer.group_send("g", {"n": 2})
    assert command(topology, lists, "EXISTS", lists) == 0
    assert (await receive(layer, member))["n"] == 1
    assert await nothing_on(layer, member)
    await layer.flush()
    await layer.close()


async def test_entries_are_the_entry_format_byte_for_byte(redis_single) -> None:
    """Long names (str8), short ones (fixstr), 3 members (fixarray), 20 (array16)."""
    hosts = redis_single.hosts
    sender = RedisChannelLayer(hosts=hosts, prefix="bytes")
    crowd = RedisChannelLayer(hosts=hosts, prefix="bytes")
    few = RedisChannelLayer(hosts=hosts, prefix="bytes")
    members = {"crowd": [await crowd.new_channel() for _ in range(20)],
               "few": [await few.new_channel() for _ in range(3)],
               "short": ["s"], "long": ["a-plain-channel-name-longer-than-32-bytes"]}
    for channels in members.values():
        for channel in channels:
            await sender.group_add("g", channel)
    await sender.group_send("g", {"type": "bytes", "data": b"\x00" * 300})
    for channels in members.values():
        key = sender.keys.channel(channels[0])
        [raw] = command(redis_single, key, "LRANGE", key, 0, -1)
        target, expires, payload = decode_entry(raw)
        assert sorted([target] if isinstance(target, str) else target) == sorted(channels)
        assert sender.codec.decode(payload) == {"type": "bytes", "data": b"\x00" * 300}
        assert raw == encode_entry(target, expires, payload)
    for layer in (sender, crowd, few):
        await layer.flush()
        await layer.close()


async def test_a_send_queued_before_a_group_send_arrives_first(make_layer) -> None:
    layer = make_layer()
    member = await layer.new_channel()
    await layer.group_add("g", member)
    await layer.group_send("g", {"n": 0})
    for n in range(1, 4):
        direct = layer.send_soon(member, {"n": f"direct {n}"})  # not written yet
        await layer.group_send("g", {"n": f"group {n}"})
        await direct
    got = [(await receive(layer, member))["n"] for _ in range(7)]
    assert got == [0, "direct 1", "group 1", "direct 2", "group 2", "direct 3", "group 3"]
    await layer.flush()
    await layer.close()


async def test_a_member_list_over_max_message_size_raises_with_nothing_pushed(
        topology, make_layer) -> None:
    layer = make_layer(max_message_size=1000)
    crowd = make_layer()
    members = [await crowd.new_channel() for _ in range(20)]  # ~55 bytes of name each
    for member in members:
        await layer.group_add("g", member)
    with pytest.raises(MessageTooLarge, match=r"group 'g' .* max_message_size of 1,000"):
        await layer.group_send("g", {"text": "x" * 200})
    with pytest.raises(MessageTooLarge, match=r"group 'g' .* max_message_size of 1,000"):
        await layer.group_send("g", {"text": "x" * 1000})  # refused before any round trip
    key = layer.keys.channel(members[0])
    assert command(topology, key, "EXISTS", key) == 0
    await layer.group_discard("g", members[0])
    for member in members[10:]:
        await layer.group_discard("g", member)
    await layer.group_send("g", {"text": "x" * 200})  # 9 members left: it fits
    for member in members[1:10]:
        assert (await receive(crowd, member))["text"] == "x" * 200
    await layer.flush()
    await crowd.close()
    await layer.close()


async def test_channel_capacity_applies_to_each_list(redis_single) -> None:
    """channel_capacity's patterns are the sender's: the entries come back and are pushed as
    sends are, each list with its own capacity."""
    hosts = redis_single.hosts
    layer = RedisChannelLayer(hosts=hosts, prefix="capacities", capacity=10,
                              channel_capacity={"tiny*": 1, "specific.*": 2})
    member = await layer.new_channel()
    for channel in (member, "tiny-one", "roomy"):
        await layer.group_add("g", channel)
    for n in range(3):
        await layer.group_send("g", {"n": n})
    assert [(await receive(layer, member))["n"] for _ in range(2)] == [0, 1]
    assert [(await receive(layer, "tiny-one"))["n"]] == [0]
    assert [(await receive(layer, "roomy"))["n"] for _ in range(3)] == [0, 1, 2]
    assert await nothing_on(layer, member) and await nothing_on(layer, "tiny-one")
    await layer.flush()
    await layer.close()


async def test_group_send_after_script_flush(topology, make_layer) -> None:
    layer = make_layer()
    member = await layer.new_channel()
    await layer.group_add("g", member)
    await layer.group_send("g", {"n": 1})
    for server in topology.servers:
        server.command("SCRIPT", "FLUSH")
    await layer.group_send("g", {"n": 2})  # NOSCRIPT, then as source
    assert [(await receive(layer, member))["n"] for _ in range(2)] == [1, 2]
    await layer.flush()
    await layer.close()


async def test_members_of_many_processes_and_channels(topology, make_layer) -> None:
    """More lists than one ZADD of the lists key takes (500): every member still gets it."""
    layer = make_layer()
    local = await layer.new_channel()
    plain = [f"plain-{n}" for n in range(600)]
    for channel in [local, *plain]:
        await layer.group_add("many", channel)
    await layer.group_send("many", {"type": "all"})
    assert (await receive(layer, local))["type"] == "all"
    for channel in (plain[0], plain[499], plain[500], plain[-1]):
        assert (await receive(layer, channel))["type"] == "all"
    await layer.flush()
    await layer.close()


def test_a_local_list_of_the_lists_key_is_the_owner_of_its_channels() -> None:
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"], prefix="p",
                              channel_capacity={"specific.*": 3, "tiny": 1}, capacity=9)
    owner = local_owner("specific.abc1!xyz")
    assert layer._list_capacity(layer.keys.local_list(owner)) == 3
    assert layer._list_capacity(layer.keys.channel("tiny")) == 1
    assert layer._list_capacity(layer.keys.channel("other")) == 9


async def test_members_of_one_process_get_messages_of_their_own(make_layer) -> None:
    """One entry carries a group message to every member of a process: each receive() still
    returns a dict of its own, nested values included, whatever another member does to its."""
    layer = make_layer()
    members = [await layer.new_channel() for _ in range(3)]
    for member in members:
        await layer.group_add("g", member)
    await layer.group_send("g", {"type": "flat", "text": "hi", "n": 1})
    await layer.group_send("g", {"type": "nested", "items": [1, 2], "meta": {"k": "v"}})
    flat = [await receive(layer, member) for member in members]
    flat[0]["text"] = "changed"
    assert flat[1:] == [{"type": "flat", "text": "hi", "n": 1}] * 2
    assert flat[1] is not flat[2]
    nested = [await receive(layer, member) for member in members]
    nested[0]["items"].append(3)
    nested[0]["meta"]["k"] = "changed"
    assert nested[1:] == [{"type": "nested", "items": [1, 2], "meta": {"k": "v"}}] * 2
    assert nested[1]["items"] is not nested[2]["items"]
    await layer.flush()
    await layer.close()
