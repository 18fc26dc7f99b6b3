"""Redis Cluster: finding out that ``hosts`` is a cluster, its slot map, and keeping it current.

Any node's address is enough: the first reachable seed is asked ``CLUSTER SHARDS`` (Redis 7.0+
and Valkey; a Redis 6.2 cluster has no such command and is refused with a ConfigurationError).
A plain server answers that cluster support is disabled, and the hosts stay what they were:
one server, several sharded by hash tag, or Sentinel.

Finding out happens once per process and ``hosts``, when the first event loop builds its
topology. That step is synchronous (the layer's ``send_soon`` picks its writer synchronously, so
the slot map must be there before anything is queued); it is one short blocking round trip, and
its answer is cached. Each event loop's ``ClusterMap`` then keeps its own copy current: it asks
the cluster again when a node answers MOVED or ASK (a slot moved, or a replica was promoted)
and before reconnecting a shard whose link failed (a primary died; its replica takes its slots
within ``cluster-node-timeout``). A shard is anchored on the first slot it served, so after a
failover the same Shard (with its writer, readers and route queues) reconnects to the promoted
replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis

from ..conf.hosts import HostSpec
from ..exceptions import ConfigurationError, RedisUnavailable, ReplyError, UnsupportedServer
from ..protocol.keys import SLOTS
from .resp import open_link

__all__ = ["ClusterMap", "NodeInfo", "ShardInfo", "asking", "parse_shards", "probe",
           "redirection"]

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT = 2.0
_STANDALONE_FOR = 10.0  # seconds a "not a cluster" answer is trusted before asking again
_REFRESH_TIMEOUT = 1.0
_MIN_REFRESH_GAP = 0.05  # a burst of MOVED replies refreshes the map once
_ASK_TIMEOUT = 2.0
_NOT_READY = ("LOADING", "BUSY", "MASTERDOWN")


@dataclass(frozen=True)
class NodeInfo:
    host: str
    port: int
    primary: bool
    healthy: bool


@dataclass(frozen=True)
class ShardInfo:
    """One primary's slot ranges (inclusive) and its nodes, as CLUSTER SHARDS reports them."""

    ranges: tuple[tuple[int, int], ...]
    nodes: tuple[NodeInfo, ...]

    @property
    def primary(self) -> NodeInfo | None:
        for node in self.nodes:
            if node.primary and node.healthy:
                return node
        return None

    def serves(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.ranges)


def _ignore(fresh: list[int]) -> None:
    pass


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _node(fields: dict[str, Any], tls: bool) -> NodeInfo | None:
    endpoint = _text(fields.get("endpoint", b"") or b"")
    host = endpoint if endpoint not in ("", "?") else _text(fields.get("ip", b""))
    port = fields.get("tls-port") if tls else fields.get("port")
    if not host or not port:
        return None
    return NodeInfo(host, int(port), _text(fields.get("role")) == "master",
                    _text(fields.get("health", b"online")) == "online")


def parse_shards(reply: Sequence[Any], tls: bool = False) -> list[ShardInfo]:
    """The shards of a CLUSTER SHARDS reply that serve slots, ordered by their first slot."""
    shards = []
    for raw in reply:
        fields = _pairs(raw)
        slots = [int(s) for s in fields.get("slots") or ()]
        ranges = tuple(zip(slots[::2], slots[1::2]))
        nodes = tuple(n for n in (_node(_pairs(f), tls) for f in fields.get("nodes") or ())
                      if n is not None)
        if ranges:
            shards.append(ShardInfo(ranges, nodes))
    return sorted(shards, key=lambda shard: shard.ranges[0][0])


# Finding out (once per process and hosts) -------------------------------------------------------

_known: dict[tuple[Any, ...], tuple[float, list[ShardInfo] | None]] = {}


def _cache_key(specs: Sequence[HostSpec]) -> tuple[Any, ...]:
    return tuple((s.host, s.port, s.path, s.username, s.db, s.ssl_context is not None)
                 for s in specs)


def probe(specs: Sequence[HostSpec]) -> list[ShardInfo] | None:
    """The cluster's shards if ``specs`` are nodes of a Redis Cluster, else None (cached)."""
    if not specs or any(spec.sentinels for spec in specs):
        return None
    key = _cache_key(specs)
    known = _known.get(key)
    if known is not None and (known[1] is not None or time.monotonic() < known[0]):
        return known[1]
    for spec in specs:
        try:
            shards = _ask(spec)
        except (OSError, hiredis.ProtocolError):
            continue  # unreachable now: the next seed, or standalone until asked again
        if shards is not None and spec.db:
            raise ConfigurationError(
                "hosts", f"{spec.describe()} is a Redis Cluster node, which has database 0 only",
                "drop the database from the URL (redis://host:port/0)")
        _known[key] = (time.monotonic() + _STANDALONE_FOR, shards)
        return shards
    return None


def _ask(spec: HostSpec) -> list[ShardInfo] | None:
    commands: list[tuple[Any, ...]] = []
    if spec.password is not None:
        commands.append(("AUTH", spec.username, spec.password) if spec.username
                        else ("AUTH", spec.password))
    commands += [("CLUSTER", "SHARDS"), ("CLUSTER", "INFO")]
    with _connect(spec) as sock:
        replies = _exchange(sock, commands)
    if replies and len(commands) == 3 and isinstance(replies[0], ReplyError):
        return None  # the login failed: the layer's own connection reports it with the fix
    shards, info = replies[-2:]
    if str(shards).startswith(_NOT_READY):
        # A node still loading its data: asked again, never cached as standalone.
        raise ConnectionError(f"{spec.describe()} is not ready: {shards}")
    if not isinstance(shards, ReplyError):
        return parse_shards(shards, tls=spec.ssl_context is not None)
    if not isinstance(info, ReplyError):  # CLUSTER INFO answers on cluster nodes only
        raise UnsupportedServer(
            "hosts", f"{spec.describe()} is a Redis Cluster node without CLUSTER SHARDS "
            f"(it answered {str(shards)!r})",
            "Redis Cluster needs Redis 7.0 or later, or Valkey: upgrade the cluster, or point "
            "'hosts' at standalone servers (several are sharded by hash tag) or at Sentinel")
    return None  # cluster support disabled (or no right to ask: then MOVED will tell)


def _connect(spec: HostSpec) -> socket.socket:
    timeout = min(spec.connect_timeout, _PROBE_TIMEOUT)
    if spec.path:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.settimeout(timeout)
            sock.connect(spec.path)
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((spec.host, spec.port), timeout)
    if spec.ssl_context is None:
        return sock
    try:
        return spec.ssl_context.wrap_socket(sock, server_hostname=spec.host)
    except OSError:
        sock.close()
        raise


def _exchange(sock: socket.socket, commands: list[tuple[Any, ...]]) -> list[Any]:
    sock.sendall(b"".join(hiredis.pack_command(c) for c in commands))
    reader = hiredis.Reader(replyError=ReplyError)
    replies: list[Any] = []
    while len(replies) < len(commands):
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            replies.append(reply)
    return replies


# Following a redirection ------------------------------------------------------------------------

def redirection(error: object) -> tuple[str, str, int] | None:
    """("MOVED" or "ASK", host, port) when ``error`` is Redis Cluster sending a command
    elsewhere (the command did not run), else None."""
    if not isinstance(error, ReplyError):
        return None
    kind, _, rest = str(error).partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    host, _, port = rest.partition(" ")[2].rpartition(":")
    return (kind, host, int(port)) if host and port.isdigit() else None


async def asking(spec: HostSpec, host: str, port: int,
                 commands: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``commands`` once on the node a slot is being migrated to, each after ASKING (which
    lets the next command at a slot that node is importing run there). Replies (errors as
    ReplyError values), in order."""
    link = await open_link(host=host, port=port, ssl_context=spec.ssl_context,
                           username=spec.username, password=spec.password,
                           connect_timeout=spec.connect_timeout,
                           name=f"cluster node {host}:{port} (ASK)")
    try:
        pipeline = [part for command in commands for part in (("ASKING",), command)]
        replies = await asyncio.wait_for(
            asyncio.gather(*link.call_many(pipeline), return_exceptions=True), _ASK_TIMEOUT)
    finally:
        link.close()
    for reply in replies:
        if isinstance(reply, BaseException) and not isinstance(reply, ReplyError):
            raise reply
    return list(replies[1::2])


# Keeping it current (per event loop) ------------------------------------------------------------

class ClusterMap:
    """The slot map one event loop routes by: slot -> shard index, and each shard's primary."""

    def __init__(self, seeds: Sequence[HostSpec], shards: list[ShardInfo]) -> None:
        self.seeds = tuple(seeds)
        self.shards: list[ShardInfo] = []
        self.anchors: list[int] = []  # the first slot each shard index served
        self.table = [0] * SLOTS
        self.version = 0
        self._refreshing: asyncio.Future[None] | None = None
        #: Set by the topology: called after each refresh with the new shard indexes.
        self.on_update: Callable[[list[int]], None] = _ignore
        self._last_refresh = 0.0
        self.update(shards)

    def spec_for(self, index: int) -> HostSpec:
        """How to reach shard ``index``'s primary (the seed's login, the primary's address)."""
        node = self.shards[index].primary or self.shards[index].nodes[0]
        return dataclasses.replace(self.seeds[0], host=node.host, port=node.port, path=None,
                                   cluster=True)

    def update(self, shards: list[ShardInfo]) -> list[int]:
        """Take a new map; returns the indexes of shards seen for the first time."""
        fresh = []
        for info in shards:
            index = next((i for i, slot in enumerate(self.anchors) if info.serves(slot)), None)
            if index is None:
                index = len(self.shards)
                self.shards.append(info)
                self.anchors.append(info.ranges[0][0])
                fresh.append(index)
            else:
                self.shards[index] = info
            for first, last in info.ranges:
                self.table[first:last + 1] = [index] * (last - first + 1)
        self.version += 1
        return fresh

    def address(self, index: int) -> tuple[str, int]:
        node = self.shards[index].primary
        if node is None:
            raise RedisUnavailable(
                f"the Redis Cluster has no healthy primary for slots "
                f"{self.shards[index].ranges} yet (a failover is under way)")
        return node.host, node.port

    async def refresh(self) -> None:
        """Ask the cluster for its slot map again (one request at a time, shared)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        gap = self._last_refresh + _MIN_REFRESH_GAP - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)
        problems = []
        for spec in self._candidates():
            try:
                link = await open_link(
                    host=spec.host, port=spec.port, path=spec.path,
                    ssl_context=spec.ssl_context, username=spec.username,
                    password=spec.password, connect_timeout=_REFRESH_TIMEOUT,
                    name=f"{spec.describe()} (slot map)")
            except (RedisUnavailable, ReplyError) as exc:
                problems.append(str(exc))
                continue
            try:
                reply = await asyncio.wait_for(link.call("CLUSTER", "SHARDS"), _REFRESH_TIMEOUT)
            except (RedisUnavailable, ReplyError, asyncio.TimeoutError) as exc:
                problems.append(f"{spec.describe()}: {exc or 'timed out'}")
                continue
            finally:
                link.close()
            self._last_refresh = time.monotonic()
            self.on_update(self.update(parse_shards(reply, spec.ssl_context is not None)))
            return
        self._last_refresh = time.monotonic()
        raise RedisUnavailable("no node of the Redis Cluster answered CLUSTER SHARDS: "
                               + "; ".join(problems[-3:]))

    def _candidates(self) -> list[HostSpec]:
        seen: set[tuple[str, int]] = set()
        specs = []
        base = self.seeds[0]
        nodes = [n for shard in self.shards for n in shard.nodes if n.healthy]
        nodes.sort(key=lambda n: not n.primary)  # primaries first: they know the latest map
        for host, port in [(n.host, n.port) for n in nodes] + [(s.host, s.port)
                                                              for s in self.seeds]:
            if (host, port) not in seen:
                seen.add((host, port))
                specs.append(dataclasses.replace(base, host=host, port=port, path=None))
        return specs
