"""The Channels 4 channel layer API and its semantics, on single and sharded Redis."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from channels_distributed import ChannelFull, RedisChannelLayer
from channels_distributed.exceptions import ForeignChannelError
from channels_distributed.protocol.keys import key_slot

WAIT = 5.0


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = WAIT) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def nothing_on(layer: RedisChannelLayer, channel: str, within: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), within)
    except asyncio.TimeoutError:
        return True
    return False


@pytest.mark.core
async def test_send_receive_normal_channel_fifo(layer: RedisChannelLayer) -> None:
    for i in range(5):
        await layer.send("work-queue", {"type": "job", "n": i})
    assert [(await receive(layer, "work-queue"))["n"] for _ in range(5)] == list(range(5))


@pytest.mark.core
async def test_process_local_channel(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    assert re.fullmatch(r"specific\.[0-9a-f]{33,}![0-9a-f]{12}", channel)
    await layer.send(channel, {"type": "hello", "text": "local"})
    assert await receive(layer, channel) == {"type": "hello", "text": "local"}


async def test_new_channel_names_are_unique(layer: RedisChannelLayer) -> None:
    names = {await layer.new_channel() for _ in range(1000)}
    assert len(names) == 1000
    assert len({await layer.new_channel(prefix="chat") for _ in range(10)}) == 10


async def test_message_types_round_trip(layer: RedisChannelLayer) -> None:
    message = {"type": "data", "bytes": b"\x00\xff", "text": "é", "n": 2**40, "f": 1.5,
               "none": None, "list": [1, "a", b"b"], "nested": {"k": [True, False]}}
    channel = await layer.new_channel()
    await layer.send(channel, message)
    assert await receive(layer, channel) == message


@pytest.mark.core
async def test_one_megabyte_message(layer: RedisChannelLayer) -> None:
    body = bytes(range(256)) * 4096
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "big", "body": body})
    assert (await receive(layer, channel))["body"] == body


@pytest.mark.core
async def test_two_layers_exchange(make_layer) -> None:
    alice, bob = make_layer(), make_layer()
    a, b = await alice.new_channel(), await bob.new_channel()
    await alice.send(b, {"type": "ping", "reply": a})
    got = await receive(bob, b)
    await bob.send(got["reply"], {"type": "pong"})
    assert (await receive(alice, a))["type"] == "pong"
    await alice.flush()
    await alice.close()
    await bob.close()


@pytest.mark.core
async def test_competing_consumers_share_a_normal_channel(make_layer) -> None:
    producer, one, two = make_layer(), make_layer(), make_layer()
    for i in range(20):
        await producer.send("jobs", {"type": "job", "n": i})
    seen = [(await receive(one, "jobs"))["n"] for _ in range(10)]
    seen += [(await receive(two, "jobs"))["n"] for _ in range(10)]
    assert sorted(seen) == list(range(20))
    for layer in (producer, one, two):
        await layer.close()
    await producer.flush()


@pytest.mark.parametrize("name", ["=+135!", "", "a" * 100, "has space", 42, None, "ok!bad{"])
async def test_bad_channel_names_raise_type_error(layer: RedisChannelLayer, name) -> None:
    with pytest.raises(TypeError):
        await layer.send(name, {"type": "x"})
    with pytest.raises(TypeError):
        await layer.receive(name)


@pytest.mark.parametrize("name", ["bad group", "a!b", "x" * 100, 3])
async def test_bad_group_names_raise_type_error(layer: RedisChannelLayer, name) -> None:
    channel = await layer.new_channel()
    with pytest.raises(TypeError):
        await layer.group_add(name, channel)
    with pytest.raises(TypeError):
        await layer.group_send(name, {"type": "x"})


async def test_receive_on_another_instances_local_channel_is_refused(make_layer) -> None:
    mine, theirs = make_layer(), make_layer()
    channel = await theirs.new_channel()
    with pytest.raises(ForeignChannelError, match="another channel layer"):
        await mine.receive(channel)
    with pytest.raises(AssertionError):  # what channels_redis users catch
        await mine.receive("not-client-prefix!local_part")


async def test_non_dict_message_is_refused(layer: RedisChannelLayer) -> None:
    with pytest.raises(TypeError, match="dict"):
        await layer.send("c", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="serialized"):
        await layer.send("c", {"type": "x", "obj": object()})


# Capacity ----------
@pytest.mark.core
async def test_capacity_on_normal_channel(make_layer) -> None:
    layer = make_layer(capacity=3)
    for _ in range(3):
        await layer.send("full-chan", {"type": "x"})
    with pytest.raises(ChannelFull, match="full"):
        await layer.send("full-chan", {"type": "x"})
    await receive(layer, "full-chan")
    await layer.send("full-chan", {"type": "x"})  # room again after one was received
    await layer.flush()
    await layer.close()


async def test_capacity_with_concurrent_sends_in_one_batch(make_layer) -> None:
    layer = make_layer(capacity=5)
    results = await asyncio.gather(*(layer.send("burst", {"type": "x", "n": i})
                                     for i in range(8)), return_exceptions=True)
    assert results[:5] == [None] * 5
    assert all(isinstance(r, ChannelFull) for r in results[5:])
    assert [(await receive(layer, "burst"))["n"] for _ in range(5)] == list(range(5))
    await layer.flush()
    await layer.close()


async def test_channel_capacity_globs_and_regexes(make_layer) -> None:
    layer = make_layer(capacity=10, channel_capacity={"tiny*": 1, re.compile(r"^two-"): 2})
    await layer.send("tiny-one", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("tiny-one", {"type": "x"})
    await layer.send("two-a", {"type": "x"})
    await layer.send("two-a", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("two-a", {"type": "x"})
    for _ in range(10):
        await layer.send("other", {"type": "x"})
    await layer.flush()
    await layer.close()


@pytest.mark.core
async def test_capacity_on_process_local_channel(make_layer) -> None:
    layer = make_layer(capacity=3)
    channel = await layer.new_channel()
    for _ in range(3):
        await layer.send(channel, {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "x"})
    await layer.flush()
    await layer.close()


# Groups ----------
@pytest.mark.core
async def test_groups_add_discard_send(layer: RedisChannelLayer) -> None:
    one, two, three = [await layer.new_channel(prefix=f"g{i}") for i in range(3)]
    for channel in (one, two, three):
        await layer.group_add("room", channel)
    await layer.group_discard("room", two)
    await layer.group_send("room", {"type": "chat", "text": "hi"})
    assert (await receive(layer, one))["text"] == "hi"
    assert (await receive(layer, three))["text"] == "hi"
    assert await nothing_on(layer, two)


async def test_group_send_to_empty_group_is_a_no_op(topology, layer: RedisChannelLayer) -> None:
    former = await layer.new_channel()
    await layer.group_add("emptied", former)
    await layer.group_discard("emptied", former)
    before = sorted(topology.keys(f"{layer.prefix}:*"))
    for group in ("nobody-here", "emptied"):  # never had a member; had one who left
        await layer.group_send(group, {"type": "x"})
    assert sorted(topology.keys(f"{layer.prefix}:*")) == before  # nothing written
    assert await nothing_on(layer, former)  # the member that left is not reached


async def test_group_send_reaches_many_members_of_one_process(layer: RedisChannelLayer) -> None:
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("crowd", channel)
    await layer.group_send("crowd", {"type": "all"})
    for channel in channels:
        assert (await receive(layer, channel))["type"] == "all"


async def test_group_send_never_raises_channel_full_and_logs(make_layer, caplog) -> None:
    layer = make_layer(capacity=2)
    local = await layer.new_channel()
    await layer.group_add("busy", local)
    await layer.group_add("busy", "plain-full")
    caplog.set_level(logging.INFO, logger="channels_distributed.layer")
    for i in range(4):
        await layer.group_send("busy", {"type": "m", "n": i})
    assert [(await receive(layer, local))["n"] for _ in range(2)] == [0, 1]
    assert await nothing_on(layer, local)
    assert "2 of 2 channels over capacity in group busy" in caplog.text
    await layer.flush()
    await layer.close()


@pytest.mark.core
async def test_group_send_cost_grows_with_processes_not_members(topology, make_layer) -> None:
    """One push per receiving list, not one per member; where every list is on the group's
    server (one server, alone or behind a sentinel) the whole group_send is one script call."""
    processes = [make_layer() for _ in range(3)]
    members = []
    for process in processes:
        for _ in range(30):
            channel = await process.new_channel()
            members.append((process, channel))
            await process.group_add("fanout", channel)
    await processes[0].group_send("fanout", {"type": "warm-up"})  # scripts loaded everywhere
    before = _command_calls(topology)
    await processes[0].group_send("fanout", {"type": "x"})
    spent = {name: n - before.get(name, 0) for name, n in _command_calls(topology).items()}
    assert spent.get("rpush") == 3  # one push per local list, not 90
    one_server = topology.name.startswith("single") or topology.name == "sentinel"
    # Else the group's entries come from one script call, and each list's push is another.
    assert spent.get("evalsha") == (1 if one_server else 4)
    for process, channel in members:
        assert (await receive(process, channel))["type"] == "warm-up"
        assert (await receive(process, channel))["type"] == "x"
    await processes[0].flush()
    for process in processes:
        await process.close()


def _command_calls(topology) -> dict[str, int]:
    """Calls so far per command, on every server of ``topology`` (commands scripts ran too)."""
    total: dict[str, int] = {}
    for server in topology.servers:
        stats = server.command("INFO", "commandstats").decode()
        for name, calls in re.findall(r"cmdstat_([^:]+):calls=(\d+)", stats):
            total[name] = total.get(name, 0) + int(calls)
    return total


async def test_group_membership_expires(make_layer) -> None:
    layer = make_layer(group_expiry=10)
    now = [1_000_000.0]
    layer.clock = lambda: now[0]
    channel = await layer.new_channel()
    await layer.group_add("short", channel)
    now[0] += 11
    await layer.group_send("short", {"type": "late"})
    assert await nothing_on(layer, channel)
    await layer.flush()
    await layer.close()


# Expiry (clock injected, no sleeping) ----------
@pytest.mark.core
async def test_expired_messages_are_never_delivered(make_layer) -> None:
    layer = make_layer(expiry=10)
    now = [1_000_000.0]
    layer.clock = lambda: now[0]
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "old"})
    now[0] += 5
    await layer.send(channel, {"type": "new"})
    now[0] += 6  # "old" is 11 s old now, "new" 6 s
    assert (await receive(layer, channel))["type"] == "new"
    await layer.send("plain", {"type": "old"})
    now[0] += 11
    assert await nothing_on(layer, "plain")
    await layer.flush()
    await layer.close()


async def test_expiry_checked_on_buffered_messages_too(make_layer) -> None:
    layer = make_layer(expiry=10)
    now = [1_000_000.0]
    layer.clock = lambda: now[0]
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.send(one, {"type": "for-one"})
    await layer.send(two, {"type": "for-two"})
    assert (await receive(layer, two))["type"] == "for-two"  # pops "for-one" into a buffer
    now[0] += 11
    assert await nothing_on(layer, one)
    await layer.flush()
    await layer.close()


# Encryption and serialization ----------
async def test_encrypted_layers_exchange_and_redis_sees_ciphertext(topology, make_layer) -> None:
    keys = ["a-long-secret-key"]
    alice = make_layer(symmetric_encryption_keys=keys, capacity=5)
    bob = make_layer(symmetric_encryption_keys=["new-key", *keys], capacity=5)
    await alice.send("secret-chan", {"type": "x", "text": "plaintext-marker"})
    raw = b"".join(s.command("LRANGE", f"{alice.prefix}:{{c:secret-chan}}", 0, -1)
                   for s in topology.servers)
    assert b"plaintext-marker" not in raw and b"secret-chan" in raw
    assert (await receive(bob, "secret-chan"))["text"] == "plaintext-marker"
    await alice.flush()
    await alice.close()
    await bob.close()


async def test_wrong_key_is_logged_and_skipped(make_layer, caplog) -> None:
    sender = make_layer(symmetric_encryption_keys=["one"])
    receiver = make_layer(symmetric_encryption_keys=["two"])
    await sender.send("enc", {"type": "unreadable"})
    await receiver.send("enc", {"type": "readable"})
    assert (await receive(receiver, "enc"))["type"] == "readable"
    assert "could not be decrypted" in caplog.text
    await sender.flush()
    await sender.close()
    await receiver.close()


async def test_json_serializer(make_layer) -> None:
    layer = make_layer(serializer_format="json")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "j", "list": [1, 2]})
    assert await receive(layer, channel) == {"type": "j", "list": [1, 2]}
    await layer.flush()
    await layer.close()


# Garbage -----------------------------------------------------------------------------------
async def test_garbage_on_a_channel_key_is_logged_and_skipped(topology, layer, caplog) -> None:
    key = f"{layer.prefix}:{{c:dirty}}"
    server = topology.servers[key_slot(key) * len(topology.servers) // 16384]
    server.command("RPUSH", key, b"\xc1\xc1 not msgpack", b"\x93\x01\x02\x03", b"")
    await layer.send("dirty", {"type": "clean"})
    assert (await receive(layer, "dirty"))["type"] == "clean"
    assert caplog.text.count("skipping garbage") == 3
    channel = await layer.new_channel()  # the layer keeps serving
    await layer.send(channel, {"type": "still"})
    assert (await receive(layer, channel))["type"] == "still"


# Sharding ---------------------------------------------------------------------------------
async def test_process_local_channels_route_by_the_part_before_the_bang(redis_sharded,
                                                                          make_layer) -> None:
    sender, receiver = make_layer(hosts=redis_sharded.hosts), make_layer(hosts=redis_sharded.hosts)
    channels = [await receiver.new_channel() for _ in range(20)]
    for channel in channels:
        await sender.send(channel, {"type": "x", "to": channel})
    for channel in channels:
        assert (await receive(receiver, channel))["to"] == channel
    await sender.flush()
    await sender.close()
    await receiver.close()


async def test_sharded_keys_spread_over_all_servers(redis_sharded, make_layer) -> None:
    layer = make_layer(hosts=redis_sharded.hosts, capacity=1000)
    for i in range(60):
        await layer.send(f"spread-{i}", {"type": "x"})
    counts = [len(server.keys(f"{layer.prefix}:*")) for server in redis_sharded.servers]
    assert sum(counts) == 60 and all(counts)
    await layer.flush()
    assert sum(len(s.keys(f"{layer.prefix}:*")) for s in redis_sharded.servers) == 0
    await layer.close()



def test_the_layer_sends_no_redis_command_itself() -> None:
    """transport/ is the only code that talks to Redis: layer.py opens no link and sends no
    command (group membership and flush were ZADD/ZRANGE/SCAN/UNLINK calls in layer.py)."""
    import ast
    from pathlib import Path

    import channels_distributed.layer

    tree = ast.parse(Path(channels_distributed.layer.__file__).with_suffix(".py").read_text())
    found = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                    and node.attr in ("call", "call_many", "link", "blocking_link")})
    assert not found, f"layer.py talks to Redis itself: {found}"
