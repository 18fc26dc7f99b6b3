"""The Redis reads of ``channels-distributed status``: pipelines per server, and a bounded SCAN.

Everything here only reads (GET, ZRANGE, LLEN, LINDEX, SMEMBERS, ZCARD, SCAN). Commands on keys
are grouped by the server that holds each key (``Topology.shard_for``) and sent as one pipeline
per server, all servers at once: a status costs a few round trips whatever the number of keys.
On a Redis Cluster a command answered with a redirection (a slot moving while we read) is sent
again where the slot lives now (``transport.routed``); the others stand.

The SCAN runs on every server of the topology (every primary of a Cluster: a SCAN sees only
the keys of the node it runs on), never ``KEYS``, and stops after about ``limit`` keys examined
per server, so that its cost does not grow with the key space.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ReplyError
from ..protocol.keys import KeySpace
from ..transport import routed
from ..transport.cluster import redirection
from ..transport.refusals import refusal
from ..transport.resp import RespLink
from ..transport.topology import Shard, Topology

__all__ = ["SCAN_BATCH", "STATUS_ACL", "Scanned", "pipelined", "scan"]

#: What a Redis ACL user needs to read the status (prefix 'asgi'; docs/status.rst): reads only.
STATUS_ACL = ("~asgi:* resetchannels -@all +zrange +get +llen +lindex +smembers +zcard +scan "
              "+select +cluster|shards +cluster|info")

#: Keys one SCAN call examines (its COUNT): a call costs Redis well under a millisecond.
SCAN_BATCH = 1000

#: A key and a command on it (the key decides the server).
Command = tuple[str, tuple[Any, ...]]


async def pipelined(topology: Topology, commands: Sequence[Command], what: str,
                    where: Sequence[Shard] | None = None) -> list[Any]:
    """The replies to ``commands``, in order: one pipeline per server, all servers at once.
    ``where`` says each key's server when it is known (the scan found the key there), which
    saves working it out. A refusal (an ACL without the command, a key of another type)
    raises, saying what to fix."""
    groups: dict[Shard, list[int]] = {}
    for index, (key, _) in enumerate(commands):
        shard = where[index] if where is not None else topology.shard_for(key)
        groups.setdefault(shard, []).append(index)
    results: list[Any] = [None] * len(commands)

    async def send(shard: Shard, indexes: list[int]) -> None:
        link = await shard.link()
        for index, answer in zip(indexes, await _answers(link, [commands[i][1]
                                                               for i in indexes])):
            key, command = commands[index]
            if redirection(answer) is not None:
                answer = (await routed.run(topology, key, [command], what))[0]
            elif isinstance(answer, ReplyError):
                raise refusal(answer, what, key, shard.spec)
            elif isinstance(answer, BaseException):
                raise answer
            results[index] = answer

    await asyncio.gather(*(send(shard, indexes) for shard, indexes in groups.items()))
    return results


async def _answers(link: RespLink, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Each command's reply, or the error it got. Replies come in order (and a lost connection
    fails every command left, in order), so once the last is in, all are: awaiting that one
    alone saves the event loop a callback per command (a status may send thousands)."""
    futures = link.call_many(commands)
    await asyncio.wait([futures[-1]])
    return [future.exception() or future.result() for future in futures]


@dataclass
class Scanned:
    """What the SCAN of every server found under the prefix."""

    #: Per server (as a shard): the keys found there, decoded.
    keys: dict[Shard, list[str]] = field(default_factory=dict)
    #: Keys found under the prefix, over every server.
    count: int = 0
    #: Whether every server's scan went all the way round (else ``limit`` stopped one).
    complete: bool = True


async def scan(topology: Topology, prefix: str, limit: int) -> Scanned:
    """Every key under ``prefix`` that about ``limit`` keys examined per server find."""
    pattern = KeySpace(prefix).pattern()
    shards = list(topology.shards)  # (a cluster may add one while we wait)
    found = await asyncio.gather(*(_scan_one(shard, pattern, limit) for shard in shards))
    scanned = Scanned()
    for shard, (keys, complete) in zip(shards, found):
        scanned.keys[shard] = keys
        scanned.count += len(keys)
        scanned.complete = scanned.complete and complete
    return scanned


async def _scan_one(shard: Shard, pattern: str, limit: int) -> tuple[list[str], bool]:
    link = await shard.link()
    cursor: Any = b"0"
    budget = limit
    keys: list[str] = []
    while True:
        count = max(1, min(SCAN_BATCH, budget))
        try:
            cursor, batch = await link.call("SCAN", cursor, "MATCH", pattern, "COUNT", count)
        except ReplyError as exc:
            raise refusal(exc, "SCAN", pattern, shard.spec) from None
        # Keys are written by this package: UTF-8 (a foreign key that is not stays readable).
        keys.extend(key.decode(errors="replace") for key in batch)
        budget -= count
        if cursor in (b"0", 0):
            return keys, True
        if budget <= 0:
            return keys, False
