"""Connections per event loop, and the topology: which server holds which key.

A ``Shard`` is one Redis server (or one Sentinel-managed master, or one Redis Cluster primary and
whichever replica replaces it). It keeps one shared, pipelined command link and a few idle
blocking links. ``Topology`` maps a key to a shard by the Redis Cluster slot of its hash tag:
on a cluster through the cluster's own slot map (``cluster.py``), on several standalone servers
by an even split of the slots, so sharding is consistent on every process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .. import metrics
from ..conf.hosts import HostSpec
from ..exceptions import RedisUnavailable
from ..protocol.keys import SLOTS, key_slot
from .backoff import Backoff
from .cluster import ClusterMap, probe
from .resp import RespLink, open_link, quiet
from .sentinel import SentinelWatch

__all__ = ["Shard", "Topology"]

logger = logging.getLogger(__name__)



class Shard:
    """One Redis server as seen from one event loop."""

    def __init__(self, spec: HostSpec, retry_window: float, index: int = 0,
                 cluster: ClusterMap | None = None) -> None:
        self.spec = spec
        self.cluster = cluster
        #: On Redis Cluster, the topology's shard_for: where a key's slot is served now, for
        #: holders of a shard that must follow their keys (a worker's route queues).
        self.locate: Callable[[str], Shard] | None = None
        # A cluster shard that failed to connect asks for the slot map before trying again:
        # its primary may have died and a replica taken its slots. (Not after every closed
        # link: links are closed on purpose too, and a dead primary refuses the reconnect.)
        self._suspect = False
        self.index = index
        self.retry_window = retry_window
        self._link: RespLink | None = None
        self._connecting: asyncio.Future[RespLink] | None = None
        self._idle_blocking: list[RespLink] = []
        self._all_blocking: set[RespLink] = set()
        self._closed = False
        self.has_blmpop: bool | None = None
        # Every link opened to this server (command, blocking, presence...): a failover moves
        # them all.
        self._links: set[RespLink] = set()
        self._sentinel = SentinelWatch(spec, self._switched) if spec.sentinels else None

    def __repr__(self) -> str:
        return f"<Shard {self.index} {self.spec.describe()}>"

    @property
    def connected_link(self) -> RespLink | None:
        """The command link if it is open right now (no waiting)."""
        link = self._link
        return link if link is not None and link.is_open else None

    async def link(self) -> RespLink:
        """The shared command link, (re)connecting within ``retry_window`` seconds."""
        link = self._link
        if link is not None and link.is_open:
            return link
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect_with_retry("command"))
            if link is not None and metrics.LAYER is not None:  # it had one: lost, or closed
                self._connecting.add_done_callback(_count_reconnect)
        link = await asyncio.shield(self._connecting)
        self._link = link
        return link

    async def _connect_with_retry(self, purpose: str) -> RespLink:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_window
        # A cluster shard learns from the healthy nodes when its replica takes over: asked
        # often, so that sends resume at most 0.1 s after the failover.
        backoff = Backoff(0.02, 0.1) if self.cluster is not None else Backoff()
        while True:
            if self._closed:
                raise RedisUnavailable(f"the channel layer was closed ({self.spec.describe()})")
            try:
                return await self.connect_once(purpose)
            except RedisUnavailable as exc:
                pause = backoff.next()
                if loop.time() + pause > deadline:
                    raise RedisUnavailable(
                        f"Redis at {self.spec.describe()} was unreachable for "
                        f"{self.retry_window:g} s: {exc}. Check that it is running and that "
                        "'hosts' points at it"
                    ) from exc
                await asyncio.sleep(pause)

    async def connect_once(self, purpose: str = "") -> RespLink:
        spec = self.spec
        host, port = spec.host, spec.port
        if self._sentinel is not None:
            host, port = await self._sentinel.master()
        elif self.cluster is not None:
            host, port = await self._primary(self.cluster)
        try:
            link = await open_link(
                host=host, port=port, path=spec.path, ssl_context=spec.ssl_context,
                username=spec.username, password=spec.password, db=spec.db,
                connect_timeout=spec.connect_timeout, name=f"{spec.describe()} ({purpose})",
            )
        except RedisUnavailable:
            self._suspect = True
            if metrics.LAYER is not None:
                metrics.LAYER.redis_error("connect")
            raise
        if self._closed:
            link.close()
            raise RedisUnavailable(f"the channel layer was closed ({spec.describe()})")
        self._links.add(link)
        link.when_closed(lambda: self._links.discard(link))
        if self.cluster is not None:
            link.on_moved = self._moved
        return link

    async def _primary(self, cluster: ClusterMap) -> tuple[str, int]:
        if self._suspect:
            await cluster.refresh()
        host, port = cluster.address(self.index)  # raises while no replica was promoted yet
        self._suspect = False
        if (host, port) != (self.spec.host, self.spec.port):
            self.spec = cluster.spec_for(self.index)
        return host, port

    def _moved(self) -> None:
        # A node answered MOVED: the slot map is stale. Refreshed in the background; the
        # command that got the answer is sent again where the slot is now by the writer and
        # routed.run, and fails as transient elsewhere (its owner tries again).
        cluster = self.cluster
        if cluster is not None and not self._closed:
            task = asyncio.ensure_future(cluster.refresh())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _switched(self, address: tuple[str, int]) -> None:
        # Sentinel announced a new master: drop every connection to the old one. Pops and
        # pushes in flight fail over to a new connection (a push in flight raises, as it may
        # have run on the old master); everything reconnects to ``address``.
        self.switched()

    def switched(self) -> None:
        """Another server serves this shard now: every connection to the old one is dropped,
        and they reconnect to the new one."""
        for link in list(self._links):
            link.close()

    async def blocking_link(self) -> RespLink:
        """A link for blocking pops: reused from the idle list or opened now (one attempt)."""
        while self._idle_blocking:
            link = self._idle_blocking.pop()
            if link.is_open and not link.pending:
                return link
            self._all_blocking.discard(link)
            link.close()
        link = await self.connect_once("blocking")
        self._all_blocking.add(link)
        return link

    def release_blocking(self, link: RespLink) -> None:
        if self._closed or not link.is_open or link.pending or len(self._idle_blocking) >= 4:
            self._all_blocking.discard(link)
            link.close()
        else:
            self._idle_blocking.append(link)

    def abandon(self) -> None:
        """Release the connections of an event loop closed without closing this shard."""
        self._closed = True
        quiet(self._connecting)
        if self._sentinel is not None:
            self._sentinel.abandon()
        for link in (self._link, *self._all_blocking, *self._links):
            if link is not None:
                link.abandon()
        self._link = None
        self._idle_blocking.clear()
        self._all_blocking.clear()

    async def close(self) -> None:
        self._closed = True
        if self._sentinel is not None:
            self._sentinel.close()
        links = [link for link in {self._link, *self._all_blocking, *self._links}
                 if link is not None]
        self._link = None
        self._idle_blocking.clear()
        self._all_blocking.clear()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        for link in links:
            link.close()
        await asyncio.gather(*(link.aclose() for link in links), return_exceptions=True)


def _count_reconnect(connecting: asyncio.Future[RespLink]) -> None:
    if metrics.LAYER is not None and not connecting.cancelled() and connecting.exception() is None:
        metrics.LAYER.reconnected()


class Topology:
    """All shards of one layer in one event loop; ``shard_for(key)`` picks by hash slot."""

    def __init__(self, specs: Sequence[HostSpec], retry_window: float) -> None:
        self.retry_window = retry_window
        found = probe(specs)
        self.cluster = ClusterMap(specs, found) if found is not None else None
        if self.cluster is not None:
            cluster = self.cluster
            self.shards = [self._cluster_shard(cluster, i) for i in range(len(cluster.shards))]
            cluster.on_update = functools.partial(self._grow, cluster)
            table = cluster.table
            locate: Any = lambda key: table[key_slot(key)]  # noqa: E731
        else:
            self.shards = [Shard(spec, retry_window, i) for i, spec in enumerate(specs)]
            count = len(self.shards)
            locate = lambda key: key_slot(key) * count // SLOTS  # noqa: E731
        self._single = self.shards[0] if len(self.shards) == 1 else None
        # Cached per key: CRC16 in Python costs more than the rest of a send.
        self._index_of: Any = functools.lru_cache(maxsize=16384)(locate)

    def _cluster_shard(self, cluster: ClusterMap, index: int) -> Shard:
        shard = Shard(cluster.spec_for(index), self.retry_window, index, cluster)
        shard.locate = self.shard_for
        return shard

    def _grow(self, cluster: ClusterMap, fresh: list[int]) -> None:
        # A refreshed cluster map: slots may have moved (the cached placements go) and a
        # primary that serves slots for the first time becomes a shard.
        for index in fresh:
            self.shards.append(self._cluster_shard(cluster, index))
        for shard in self.shards:
            # A shard whose primary changed while its links stayed open (a failover with the
            # old primary alive, now a replica answering MOVED): reconnected to the new one.
            primary = cluster.shards[shard.index].primary
            if primary is None or (primary.host, primary.port) != (shard.spec.host,
                                                                   shard.spec.port):
                shard.switched()
        self._single = None
        self._index_of.cache_clear()

    def shard_for(self, key: str) -> Shard:
        if self._single is not None:
            return self._single
        shard: Shard = self.shards[self._index_of(key)]
        return shard

    def colocated(self, key: str, other: str) -> bool:
        """Whether one script may touch both keys: the same server, and on a cluster the same
        slot too (a cluster refuses a script over two slots with CROSSSLOT)."""
        if self.cluster is not None:
            return key_slot(key) == key_slot(other)
        return self.shard_for(key) is self.shard_for(other)

    def abandon(self) -> None:
        for shard in self.shards:
            shard.abandon()

    async def close(self) -> None:
        await asyncio.gather(*(shard.close() for shard in self.shards), return_exceptions=True)
