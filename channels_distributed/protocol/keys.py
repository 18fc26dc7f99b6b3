"""Every Redis key and presence channel name of the package, and channel/group name validation.

Every key carries a hash tag (``{...}``) so that each multi-key command touches one slot: the
same code runs on Redis Cluster, and the same slot map shards over several plain servers.
Process-local channels (``owner!suffix``) are keyed by their owner, the part before the ``!``, on
send *and* on receive, so a sharded deployment never loses them (channels_redis issue #221). An
*inbox* is only ever a process's list of forwarded-connection entries (``DistKeys.inbox``).

Under a prefix (``asgi`` by default), ``KeySpace`` names the channel layer's keys and
``DistKeys`` those of forwarded connections:

=================================  ==============================================================
``<prefix>:{c:<channel>}``         a channel's messages (list)
``<prefix>:{i:<owner>}``           a layer's process-local channels ``<owner>!suffix`` (list)
``<prefix>:{g:<group>}``           a group's members, scored by when they joined (sorted set)
``<prefix>:{g:<group>}:lists``     what a group_send needs of them, per list (sorted set)
``<prefix>:{rt:<route>}:q``        a route key's queue of connection requests (list)
``<prefix>:{rt:<route>}:p:<id>``   the requests worker ``<id>`` took and has not acknowledged
``<prefix>:{rt:<route>}:w``        the workers of a route (set)
``<prefix>:{rt:<route>}:s:<conn>`` a request the distributor gave up after a worker took it
``<prefix>:{rt:<route>}:lock``     the reaper's lock (one reaper per route at a time)
``<prefix>:{rt:<route>}:n:<n>``    an edge spreads the route over ``n`` sub-queues (``SET PX``)
``<prefix>:ring:<route>``          the doorbell of a spread route: a pub/sub channel
``<prefix>:{p:<id>}:in``           a distributor's or worker's inbox (list)
``<prefix>:{p:<id>}:lease``        its lease (``SET PX``)
``<prefix>:{p:<id>}:card``         what it tells operators (JSON, ``figures.py``; ``SET PX``)
``<prefix>:presence:<id>``         its presence: a pub/sub channel it stays subscribed to
``<prefix>:directory``             every process's id, scored by when its card was written (ms)
=================================  ==============================================================

A spread route's sub-queues (``protocol/spread.py``) are routes of their own to these keys: the
sub-queue ``<route>~<n>.<i>.<c>`` has its queue, processing lists, registry, given-up marks and
lock under ``{rt:<route>~<n>.<i>.<c>}``.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_NAME_LENGTH",
    "SLOTS",
    "DistKeys",
    "KeySpace",
    "is_process_local",
    "key_slot",
    "local_owner",
    "valid_channel_name",
    "valid_group_name",
]

MAX_NAME_LENGTH = 100
SLOTS = 16384

# The same rules as channels.layers.BaseChannelLayer, so names valid there are valid here.
_CHANNEL_RE = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$", re.ASCII)
_GROUP_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")
_PREFIX_RE = re.compile(r"^[^{}\s]*$")


def valid_channel_name(name: object) -> bool:
    return isinstance(name, str) and len(name) < MAX_NAME_LENGTH and bool(_CHANNEL_RE.match(name))


def valid_group_name(name: object) -> bool:
    return isinstance(name, str) and len(name) < MAX_NAME_LENGTH and bool(_GROUP_RE.match(name))


def valid_prefix(prefix: object) -> bool:
    # Braces would break the hash tags, whitespace would make keys awkward to inspect.
    return isinstance(prefix, str) and bool(_PREFIX_RE.match(prefix))


def is_process_local(channel: str) -> bool:
    return "!" in channel


def local_owner(channel: str) -> str:
    """The owner of a process-local channel, the part before the ``!``: it names the list the
    channel's messages wait in with those of its owner's other process-local channels."""
    return channel.partition("!")[0]


class KeySpace:
    """Builds every key the transport uses under one prefix."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def local_list(self, owner: str) -> str:
        """The list the messages of every process-local channel ``<owner>!suffix`` wait in."""
        return f"{self.prefix}:{{i:{owner}}}"

    def channel(self, channel: str) -> str:
        """The list a channel's messages wait in: their owner's local list for ``!`` channels."""
        if "!" in channel:
            return self.local_list(local_owner(channel))
        return f"{self.prefix}:{{c:{channel}}}"

    def group(self, group: str) -> str:
        return f"{self.prefix}:{{g:{group}}}"

    def group_lists(self, group: str) -> str:
        """The group's members as group_send needs them: per receiving list, its key, how many
        members it serves and their names, packed (transport/scripts.py, GROUP_SEND)."""
        return f"{self.prefix}:{{g:{group}}}:lists"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under the prefix (glob characters escaped)."""
        escaped = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix)
        return f"{escaped}:*"


class DistKeys:
    """Every Redis key (and presence channel) of the distributed protocol under one prefix.

    Keys of one route share the hash tag ``{rt:<key>}`` and keys of one process ``{p:<id>}``,
    so every multi-key command (``LMOVE`` queue -> processing list) touches one slot.
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def queue(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:q"

    def processing(self, route: str, worker: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:p:{worker}"

    def registry(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:w"

    def state(self, route: str, conn: str) -> str:
        """Exists when the distributor gave up on a request a worker had already taken: that
        worker's acknowledgement then fails, so the request never runs after its deadline."""
        return f"{self.prefix}:{{rt:{route}}}:s:{conn}"

    def reap_lock(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:lock"

    def spread(self, route: str, n: int) -> str:
        """Exists while an edge spreads ``route`` over ``n`` sub-queues: the workers of the
        route take from every sub-queue some edge announces (``worker/spread.py``)."""
        return f"{self.prefix}:{{rt:{route}}}:n:{n}"

    def ring(self, route: str) -> str:
        """The doorbell channel of a spread route: a push that makes one of its sub-queues
        non-empty publishes on it (``transport/scripts.py``, RING_PUSH)."""
        return f"{self.prefix}:ring:{route}"

    def inbox(self, process: str) -> str:
        return f"{self.prefix}:{{p:{process}}}:in"

    def lease(self, process: str) -> str:
        return f"{self.prefix}:{{p:{process}}}:lease"

    def presence(self, process: str) -> str:
        return f"{self.prefix}:presence:{process}"

    def card(self, process: str) -> str:
        return f"{self.prefix}:{{p:{process}}}:card"

    def directory(self) -> str:
        return f"{self.prefix}:directory"



def _crc16(data: bytes) -> int:
    # CRC16-CCITT (XModem), the function Redis Cluster uses for key slots.
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster slot of ``key``, honouring a ``{hash tag}``."""
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16(raw) % SLOTS
