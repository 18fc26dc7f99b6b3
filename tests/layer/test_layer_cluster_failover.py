"""A Redis Cluster primary killed (SIGKILL) under sends, group sends and receives on every primary.

Six nodes: three primaries with a replica each, ``cluster-node-timeout`` 1 s. From the moment
the other nodes mark the dead primary as failed until its replica is promoted (about a second),
every node answers ``CLUSTERDOWN``, also for the keys of the healthy primaries. Checked:

* no send and no group_send to a healthy primary raises: they wait until the cluster is ok;
* sends to the dead primary's slots raise only when they were in flight on it when it died
  (``ConnectionLost``: they may have run, so they are not sent again), and go through again on
  the promoted replica, within ``retry_window``;
* every message sent without an error is received, in the order it was sent, and none twice
  (one whose send raised may arrive, in its place: it may have run before the primary died).

Fault test, not core: its timings are printed, and bounded only with generous slack. Before the
fix, hundreds of sends to the healthy primaries raised RedisUnavailable within 0.01 s.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

import pytest
from helpers import wait_for_async
from servers import primary_of

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisCluster
from channels_distributed.protocol.keys import local_owner
from channels_distributed.transport.resp import ConnectionLost

pytestmark = pytest.mark.processes  # a cluster of its own, one node killed (tests/tiers.py)

RETRY_WINDOW = 10.0  # the layer's setting here: a failover takes about 1-3 s
SLACK = 10.0  # a loaded 2-core machine
PREFIX = "fo"
DEAD = 0  # the primary killed: it serves slots 0-5460


def _names(kind: str, primary: int, count: int) -> list[str]:
    """``count`` channel ('c') or group ('g') names whose keys the primary ``primary`` serves."""
    return [name for name in (f"{kind}{i}" for i in range(10_000))
            if primary_of(f"{PREFIX}:{{{kind}:{name}}}", 3) == primary][:count]


@dataclass
class Sender:
    """One task sending numbered messages to a channel or a group, one after another."""

    target: str
    healthy: bool  # its keys (and its group's members) are on the primaries that stay up
    sent: list[int] = field(default_factory=list)  # numbers sent without an error
    took: list[float] = field(default_factory=list)  # how long each successful send took
    started: list[float] = field(default_factory=list)  # when each successful one started
    errors: list[tuple[float, int, BaseException]] = field(default_factory=list)

    def since(self, moment: float) -> int:
        """How many successful sends started after ``moment``."""
        return sum(1 for t in self.started if t > moment)


async def _send(layer: RedisChannelLayer, sender: Sender, group: bool,
                stop: asyncio.Event) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        started = time.monotonic()
        try:
            message = {"type": "test.message", "src": sender.target, "n": number}
            if group:
                await layer.group_send(sender.target, message)
            else:
                await layer.send(sender.target, message)
        except Exception as exc:
            sender.errors.append((started, number, exc))
        else:
            sender.sent.append(number)
            sender.took.append(time.monotonic() - started)
            sender.started.append(started)
        await asyncio.sleep(0.005)  # a steady rate, not a wait for something


async def _receive(layer: RedisChannelLayer, channel: str,
                   got: dict[str, list[tuple[str, int]]]) -> None:
    while True:
        message = await layer.receive(channel)
        got[channel].append((message["src"], message["n"]))


async def _receivers(cluster: RedisCluster) -> dict[int, tuple[RedisChannelLayer, list[str]]]:
    """A receiving layer per primary, whose local list that primary serves, with two
    process-local channels each."""
    found: dict[int, tuple[RedisChannelLayer, list[str]]] = {}
    while len(found) < 3:
        layer = RedisChannelLayer(hosts=[cluster.url], prefix=PREFIX, capacity=100_000)
        first = await layer.new_channel()
        primary = primary_of(layer.keys.local_list(local_owner(first)), 3)
        if primary in found:
            await layer.close()
            continue
        found[primary] = (layer, [first, await layer.new_channel()])
    return found


async def test_a_killed_primary_fails_no_send_to_the_others_and_loses_nothing(
        failover_cluster: RedisCluster) -> None:
    cluster = failover_cluster
    layer = RedisChannelLayer(hosts=[cluster.url], prefix=PREFIX, capacity=100_000,
                              retry_window=RETRY_WINDOW)
    receivers = await _receivers(cluster)
    members = {primary: channels for primary, (_, channels) in receivers.items()}
    # Groups: one whose set and members are on the healthy primaries, one whose set is on the
    # dead primary, one whose members are on every primary (one of them on the dead one).
    [healthy_group], [dead_group], [mixed_group] = (_names("g", p, 1) for p in (1, 0, 2))
    for group, on in [(healthy_group, (1, 2)), (dead_group, (0, 1, 2)), (mixed_group, (0, 1, 2))]:
        for primary in on:
            for channel in members[primary]:
                await layer.group_add(group, channel)
    senders = [Sender(name, primary != DEAD) for primary in range(3)
               for name in _names("c", primary, 2)]
    group_senders = [Sender(healthy_group, True), Sender(dead_group, False),
                     Sender(mixed_group, False)]
    got: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    receiving = [asyncio.ensure_future(_receive(layer, s.target, got)) for s in senders]
    receiving += [asyncio.ensure_future(_receive(receiver, channel, got))
                  for receiver, channels in receivers.values() for channel in channels]
    stop = asyncio.Event()
    sending = [asyncio.ensure_future(_send(layer, s, False, stop)) for s in senders]
    sending += [asyncio.ensure_future(_send(layer, s, True, stop)) for s in group_senders]
    everyone = senders + group_senders
    try:
        await wait_for_async(lambda: all(len(s.sent) >= 5 for s in everyone), SLACK,
                             "traffic on every primary")
        killed = time.monotonic()
        cluster.primaries[DEAD].stop(kill=True)
        replica = cluster.nodes[3 + DEAD]
        await wait_for_async(lambda: b"role:master" in replica.command("INFO", "replication"),
                             RETRY_WINDOW + SLACK, "the replica to take over")
        promoted = time.monotonic()
        await wait_for_async(lambda: all(s.since(promoted) >= 5 for s in everyone),
                             RETRY_WINDOW + SLACK, "every sender through after the failover")
        stop.set()
        await asyncio.gather(*sending)
        expected = _expected(senders, group_senders, members)
        await wait_for_async(lambda: all(set(m) <= set(got[c]) for c, m in expected.items()),
                             SLACK, "every message sent without an error to be received")
    finally:
        stop.set()
        for task in receiving + sending:
            task.cancel()
        await asyncio.gather(*receiving, *sending, return_exceptions=True)
        for receiver, _ in receivers.values():
            await receiver.close()
        await layer.close()

    healthy_errors = [(s.target, repr(e)) for s in everyone if s.healthy for *_, e in s.errors]
    dead_errors = [(s.target, t - killed, e) for s in everyone if not s.healthy
                   for t, _, e in s.errors]
    healthy_wait = max(max(s.took) for s in everyone if s.healthy)
    dead_wait = max(max(s.took) for s in everyone if not s.healthy)
    print(f"\nreplica promoted {promoted - killed:.2f} s after the kill; longest send to a "
          f"healthy primary {healthy_wait:.2f} s, to the dead one's slots {dead_wait:.2f} s; "
          f"{len(dead_errors)} sends in flight on the dead primary raised; "
          f"{sum(len(s.sent) for s in everyone)} sends went through")
    assert healthy_errors == []
    # Only pushes written to the dead primary before the layer saw it die may raise.
    assert all(isinstance(e, ConnectionLost) and at < 1.0 for _, at, e in dead_errors), \
        dead_errors
    assert max(healthy_wait, dead_wait) < RETRY_WINDOW + SLACK
    # A send that raised may have reached Redis (a push in flight: it may have run; a group's
    # pushes to the other local lists went through): its message may arrive, once, in its place.
    raised = {(s.target, n) for s in everyone for _, n, _ in s.errors}
    for channel, messages in expected.items():
        for source in {src for src, _ in messages}:
            received = [m for m in got[channel] if m[0] == source]
            assert received == sorted(set(received)), f"{channel}: out of order or twice"
            missing = {m for m in messages if m[0] == source} - set(received)
            assert not missing, f"{channel}: lost {sorted(missing)}"
            assert set(received) - set(messages) <= raised, f"{channel}: never sent"


def _expected(senders: list[Sender], group_senders: list[Sender],
              members: dict[int, list[str]]) -> dict[str, list[tuple[str, int]]]:
    """What each channel must have received, in order per source: from its own sender, and
    from each group it is a member of."""
    expected: dict[str, list[tuple[str, int]]] = {
        s.target: [(s.target, n) for n in s.sent] for s in senders}
    healthy_group, dead_group, mixed_group = group_senders
    for sender, on in [(healthy_group, (1, 2)), (dead_group, (0, 1, 2)),
                       (mixed_group, (0, 1, 2))]:
        for primary in on:
            for channel in members[primary]:
                expected.setdefault(channel, []).extend(
                    (sender.target, n) for n in sender.sent)
    return expected
