"""Which commands of the package a Redis user may run, found out by running each one.

``ACL GETUSER`` would say at once, but it needs admin rights that the package's own user should
not have. So every command that ``LAYER_ACL`` (and for the edge and the workers ``WORKER_ACL``)
grants is sent once, on scratch keys ``<prefix>:{preflight:<random>}:<x>`` of the server being
checked, with arguments that return at once (the blocking pops find entries) and keep
nothing: the scratch keys are deleted at the end, and the script cache keeps nothing either
(``scripts.acl_probes``). Redis checks the ACL before it runs a command, so its answer decides:
``NOPERM`` is a refusal (of the command, of a key under the prefix, or of the presence channel),
"unknown command" a command the server lacks (renamed, disabled, or a Redis too old), and
anything else (a result, an error of the command itself such as "cluster support disabled") a
command the user may run.

The commands come from the rule strings themselves (``commands()``), so this probe and the ACL
advice of README.rst, docs/deployment.rst and the refusals can never disagree.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import RedisUnavailable, ReplyError
from ..protocol.keys import DistKeys
from .refusals import LAYER_ACL, WORKER_ACL, denied
from .resp import RespLink
from .scripts import acl_probes

__all__ = ["PROBES", "Access", "Scratch", "commands", "needed", "probe", "rules_for"]

_BLOCK = "0.01"  # seconds a blocking probe may wait on an empty list (see "rpush")
_TIMEOUT = 2.0


def commands(rules: str) -> tuple[str, ...]:
    """The commands an ACL rule string grants (``+name``, ``+name|sub``), in its order."""
    return tuple(rule[1:] for rule in rules.split()
                 if rule.startswith("+") and not rule.startswith("+@"))


def rules_for(workers: bool) -> str:
    """What the user needs: the channel layer's rules, and the workers' on top for the edge and
    the workers."""
    return f"{LAYER_ACL} {WORKER_ACL}" if workers else LAYER_ACL


@dataclass(frozen=True)
class Scratch:
    """The keys and the presence channel of one probe, all in one hash slot."""

    prefix: str
    token: str = field(default_factory=lambda: secrets.token_hex(6))

    def key(self, name: str) -> str:
        return f"{self.prefix}:{{preflight:{self.token}}}:{name}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.key(name) for name in ("l", "m", "z", "s", "k"))

    @property
    def channel(self) -> str:
        return DistKeys(self.prefix).presence(f"preflight-{self.token}")

    @property
    def ring(self) -> str:
        return DistKeys(self.prefix).ring(f"preflight-{self.token}")


Probe = Callable[[Scratch, int], tuple[Any, ...]]


def _script(name: str, scratch: Scratch, db: int) -> tuple[Any, ...]:
    return acl_probes(scratch.key("k"))[name]


#: How each command is tried: arguments that touch only the scratch keys.
PROBES: dict[str, Probe] = {
    "evalsha": functools.partial(_script, "evalsha"),
    "eval": functools.partial(_script, "eval"),
    "script|load": functools.partial(_script, "script|load"),
    "llen": lambda s, db: ("LLEN", s.key("l")),
    # Enough entries that no blocking probe below finds the list empty: Redis ends a block's
    # timeout on its own clock tick (hz 10: up to 100 ms), not after the 10 ms asked.
    "rpush": lambda s, db: ("RPUSH", s.key("l"), "x", "x", "x", "x"),
    "lpush": lambda s, db: ("LPUSH", s.key("l"), "x"),
    "pexpire": lambda s, db: ("PEXPIRE", s.key("l"), 60000),
    "pttl": lambda s, db: ("PTTL", s.key("l")),
    "blmpop": lambda s, db: ("BLMPOP", _BLOCK, 1, s.key("l"), "LEFT", "COUNT", 1),
    "blpop": lambda s, db: ("BLPOP", s.key("l"), _BLOCK),
    "lpop": lambda s, db: ("LPOP", s.key("l"), 1),
    "zadd": lambda s, db: ("ZADD", s.key("z"), 1, "x"),
    "expire": lambda s, db: ("EXPIRE", s.key("z"), 60),
    "zrem": lambda s, db: ("ZREM", s.key("z"), "x"),
    "zremrangebyscore": lambda s, db: ("ZREMRANGEBYSCORE", s.key("z"), 0, 0),
    "zrange": lambda s, db: ("ZRANGE", s.key("z"), 0, -1),
    "scan": lambda s, db: ("SCAN", 0, "MATCH", s.key("*"), "COUNT", 10),
    "unlink": lambda s, db: ("UNLINK", s.key("k")),
    "select": lambda s, db: ("SELECT", db),
    "cluster|shards": lambda s, db: ("CLUSTER", "SHARDS"),
    "cluster|info": lambda s, db: ("CLUSTER", "INFO"),
    "blmove": lambda s, db: ("BLMOVE", s.key("l"), s.key("m"), "LEFT", "RIGHT", _BLOCK),
    "lmove": lambda s, db: ("LMOVE", s.key("l"), s.key("m"), "LEFT", "RIGHT"),
    "lrem": lambda s, db: ("LREM", s.key("l"), 1, "x"),
    "lrange": lambda s, db: ("LRANGE", s.key("l"), 0, -1),
    "sadd": lambda s, db: ("SADD", s.key("s"), "x"),
    "srem": lambda s, db: ("SREM", s.key("s"), "x"),
    "smembers": lambda s, db: ("SMEMBERS", s.key("s")),
    "scard": lambda s, db: ("SCARD", s.key("s")),
    "set": lambda s, db: ("SET", s.key("k"), "x", "PX", 60000),
    "get": lambda s, db: ("GET", s.key("k")),
    "del": lambda s, db: ("DEL", s.key("k")),
    "subscribe": lambda s, db: ("SUBSCRIBE", s.channel),  # on a link of its own
    "publish": lambda s, db: ("PUBLISH", s.ring, ""),  # a doorbell nobody listens to
    "mget": lambda s, db: ("MGET", s.key("k"), s.key("l")),
    "pubsub|numsub": lambda s, db: ("PUBSUB", "NUMSUB", s.channel),
    "info": lambda s, db: ("INFO", "server"),
}
# Unknown to the server (BLMPOP to Redis 6.2) is no problem for these: the package then pops
# with BLPOP and LPOP (reader.py).
_FALLS_BACK = frozenset({"blmpop"})


@dataclass(frozen=True)
class Access:
    """What the probe found: what the user may not do, and what the server does not know."""

    refused: tuple[str, ...] = ()  # commands
    unknown: tuple[str, ...] = ()  # commands the server does not know
    keys: bool = False  # keys under the prefix refused
    channels: bool = False  # the presence channel refused
    rings: bool = False  # the doorbell channels of spread routes refused


def needed(command: str, db: int, cluster: bool) -> bool:
    """Whether the package runs ``command`` on this server: SELECT only for a database other
    than 0; CLUSTER SHARDS and INFO only on a cluster (a standalone server that refuses them is
    taken as standalone, ``cluster.probe``)."""
    if command == "select":
        return db != 0
    if command.startswith("cluster|"):
        return cluster
    return True


async def probe(link: RespLink, scratch: Scratch, wanted: Sequence[str], db: int,
                subscriber: Callable[[], Awaitable[RespLink]]) -> Access:
    """Send each command of ``wanted`` on ``link`` (SUBSCRIBE on a link of ``subscriber``'s)
    and sort Redis' answers; the scratch keys are deleted before it returns."""
    refused: list[str] = []
    unknown: list[str] = []
    keys = channels = rings = False
    try:
        for command in wanted:
            if command == "subscribe":
                error = await _subscribe(subscriber, scratch.channel)
            else:
                error = await _error_of(link, PROBES[command](scratch, db))
            if error is None:
                continue
            what = _refused(error)
            if what == "command":
                refused.append(command)
            elif what == "channel" and command == "publish":
                rings = True
            elif what == "channel":
                channels = True
            elif what == "key":
                keys = True
            elif "unknown command" in error.lower() and command not in _FALLS_BACK:
                unknown.append(command)
    finally:
        await _clean(link, scratch)
    return Access(tuple(refused), tuple(unknown), keys, channels, rings)


def _refused(error: str) -> str | None:
    """What an ACL refused, by its wording: "... to run the 'x' command" (a command), "...
    access one of the keys / a key" (a key), "... the channels / a channel" (a channel)."""
    if not denied(error):
        return None
    lowered = error.lower()
    if "to run" in lowered:
        return "command"
    if "channel" in lowered:
        return "channel"
    return "key" if "key" in lowered else "command"


async def _error_of(link: RespLink, command: tuple[Any, ...]) -> str | None:
    """Redis' error for ``command``, or None when it ran (any other error but a refusal or
    an unknown command is the command's own: the ACL let it through)."""
    try:
        await asyncio.wait_for(link.call(*command), _TIMEOUT)
    except ReplyError as exc:
        return str(exc)
    return None


async def _subscribe(subscriber: Callable[[], Awaitable[RespLink]], channel: str) -> str | None:
    # A subscribed link takes no other command: one of its own, closed at once.
    link = await asyncio.wait_for(subscriber(), _TIMEOUT)
    try:
        return await _error_of(link, ("SUBSCRIBE", channel))
    finally:
        link.close()


async def _clean(link: RespLink, scratch: Scratch) -> None:
    # UNLINK, else DEL, else an expiry on each: whichever the user may run.
    if not link.is_open:
        return
    try:
        for command in (("UNLINK", *scratch.keys), ("DEL", *scratch.keys)):
            if await _error_of(link, command) is None:
                return
        for key in scratch.keys:
            await _error_of(link, ("PEXPIRE", key, 1))
    except (RedisUnavailable, OSError, asyncio.TimeoutError):
        pass  # Redis went away meanwhile: nothing more can be done from here
