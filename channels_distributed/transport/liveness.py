"""Liveness of processes: a lease key and a presence subscription per process, and a watch.

A process holds a lease (``SET <prefix>:{p:<id>}:lease <protocol version> PX 3000``, refreshed every
second: the version tells tools which protocol the process speaks) and is
*present* while its subscription to ``<prefix>:presence:<id>`` is open. The subscription vanishes
within milliseconds of the process dying (the kernel closes its socket), which is what lets a
distributor answer 502 well within a second and a half of a ``kill -9``. ``Watch`` checks every
process this process waits on, a few times a second, in one ``PUBSUB NUMSUB``.

With the lease, a process writes its card (``figures.py``: what it tells operators, expiring with
the lease) and its id in the directory (``<prefix>:directory``), which ``channels-distributed
status`` reads: three commands a second per process, none per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from ..exceptions import PeerLost, RedisUnavailable, ReplyError
from ..protocol.envelope import VERSION
from ..protocol.keys import DistKeys
from .backoff import Backoff
from .refusals import complain
from .resp import RespLink
from .topology import Shard

__all__ = ["LEASE_MS", "Presence", "Watch", "absent"]

logger = logging.getLogger(__name__)

LEASE_MS = 3000
REFRESH_SECONDS = 1.0
# Directory entries of processes whose card was last written longer ago than this are removed
# by the next process that writes its own (their cards expired long before).
DIRECTORY_KEEP_MS = 60_000


async def absent(link: RespLink, channels: Iterable[str]) -> set[str]:
    """The presence channels in ``channels`` that nobody is subscribed to."""
    wanted = list(channels)
    if not wanted:
        return set()
    reply = await asyncio.wait_for(link.call("PUBSUB", "NUMSUB", *wanted), 2.0)
    counts = {name.decode() if isinstance(name, bytes) else str(name): int(count)
              for name, count in zip(reply[::2], reply[1::2])}
    return {name for name in wanted if counts.get(name, 0) == 0}


class Process(Protocol):
    """What liveness needs of this process (``forwarding.hub.Hub``)."""

    @property
    def keys(self) -> DistKeys: ...

    @property
    def id(self) -> str: ...

    @property
    def presence_shard(self) -> Shard: ...

    def shard_for(self, key: str) -> Shard: ...


class Watched(Protocol):
    """A connection waiting on another process (``forwarding.peer.Peer``)."""

    def process_gone(self, error: BaseException) -> None: ...


class Presence:
    """Keeps this process present and leased, and its card written; ``refresh`` runs extra
    upkeep every second. Losing Redis and finding it again are logged (once each)."""

    def __init__(self, hub: Process, refresh: Callable[[], Awaitable[None]] | None = None,
                 card: Callable[[], dict[str, Any]] | None = None) -> None:
        self.hub = hub
        self.channel = hub.keys.presence(hub.id)
        self.lease = hub.keys.lease(hub.id)
        self._refresh = refresh
        self._card = card
        self._task: asyncio.Task[None] | None = None
        self._link: RespLink | None = None
        self._stopped = False
        self._lost_at: float | None = None  # when Redis was lost (monotonic), while it is
        self.present = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._stopped:
            try:
                await self._session()
                backoff.reset()
            except (RedisUnavailable, ReplyError, OSError, asyncio.TimeoutError) as exc:
                self.present.clear()
                if isinstance(exc, ReplyError):  # logged at ERROR if waiting will not fix it
                    complain(exc, "SUBSCRIBE, SET", self.channel, self.hub.presence_shard.spec)
                self._lost(exc)
                await backoff.pause()

    def _lost(self, exc: BaseException) -> None:
        if self._lost_at is None and not self._stopped:
            self._lost_at = time.monotonic()
            logger.warning("%s cannot reach Redis %s: %s (retrying)", self.hub.id,
                           self.hub.presence_shard.spec.describe(), exc or type(exc).__name__)

    def _found(self) -> None:
        if self._lost_at is not None:
            logger.warning("%s reached Redis %s again after %.1f s", self.hub.id,
                           self.hub.presence_shard.spec.describe(),
                           time.monotonic() - self._lost_at)
            self._lost_at = None

    async def _session(self) -> None:
        link = self._link = await self.hub.presence_shard.connect_once("presence")
        try:
            await asyncio.wait_for(link.call("SUBSCRIBE", self.channel), 2.0)
            while link.is_open and not self._stopped:
                await self._tick()
                self._found()
                self.present.set()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(link.wait_closed(), REFRESH_SECONDS)
        finally:
            self.present.clear()
            link.close()

    async def _tick(self) -> None:
        shard = self.hub.shard_for(self.lease)
        command = await shard.link()
        calls: list[Awaitable[Any]] = [command.call("SET", self.lease, VERSION, "PX", LEASE_MS)]
        card = self._written_card()
        if card is not None:  # the card shares the lease's slot: the same link
            calls.append(command.call("SET", self.hub.keys.card(self.hub.id), card,
                                      "PX", LEASE_MS))
            calls.append(self._list())
        await asyncio.wait_for(asyncio.gather(*calls), 2.0)
        if self._refresh is not None:
            await self._refresh()

    def _written_card(self) -> str | None:
        """The card as written, or None: a card that cannot be made is logged and left out,
        never allowed to end the presence (every connection of this process depends on it)."""
        if self._card is None:
            return None
        try:
            return json.dumps(self._card(), separators=(",", ":"))
        except Exception:
            logger.exception("cannot write the card of %s; its lease is kept", self.hub.id)
            return None

    async def _list(self) -> None:
        """This process in the directory; entries long stale removed."""
        directory = self.hub.keys.directory()
        link = await self.hub.shard_for(directory).link()
        now = int(time.time() * 1000)
        # It expires too (every key the package writes does, so an evicting Redis, or the
        # last process killed, leaves nothing behind for good): any live process renews it.
        await asyncio.gather(link.call("ZADD", directory, now, self.hub.id),
                             link.call("ZREMRANGEBYSCORE", directory, "-inf",
                                       f"({now - DIRECTORY_KEEP_MS}"),
                             link.call("PEXPIRE", directory, DIRECTORY_KEEP_MS))

    async def stop(self) -> None:
        """Unsubscribe and drop the lease: this process is gone for everyone at once."""
        # A flag, and the subscription closed first, as well as cancel(): on Python < 3.12
        # asyncio.wait_for swallows a cancel that arrives just as what it waits for completes,
        # and the session would then go on refreshing, and this wait, forever.
        self._stopped = True
        if self._link is not None:
            self._link.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            link = await asyncio.wait_for(self.hub.shard_for(self.lease).link(), 1.0)
            await asyncio.wait_for(link.call("DEL", self.lease, self.hub.keys.card(self.hub.id)),
                                   1.0)
        with contextlib.suppress(Exception):
            directory = self.hub.keys.directory()
            link = await asyncio.wait_for(self.hub.shard_for(directory).link(), 1.0)
            await asyncio.wait_for(link.call("ZREM", directory, self.hub.id), 1.0)


class Watch:
    """Fails the peers of processes that stopped being present (``misses`` checks in a row)."""

    def __init__(self, hub: Process, interval: float = 0.25, misses: int = 3) -> None:
        self.hub = hub
        self.interval = interval
        self.misses = misses
        self._watched: dict[str, set[Watched]] = {}  # process id -> peers waiting on it
        self._missed: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, process: str, peer: Watched) -> None:
        self._watched.setdefault(process, set()).add(peer)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def remove(self, process: str, peer: Watched) -> None:
        peers = self._watched.get(process)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._watched[process]
                self._missed.pop(process, None)

    async def _run(self) -> None:
        # Ends only after a whole interval with nothing watched: a quick request adds and
        # removes its peer within a loop turn, and a new task for each would cost more than
        # the request itself.
        while True:
            await asyncio.sleep(self.interval)
            if not self._watched:
                return
            names = {self.hub.keys.presence(p): p for p in self._watched}
            try:
                link = await asyncio.wait_for(self.hub.presence_shard.link(), self.interval * 4)
                gone = {names[c] for c in await absent(link, names)}
            except (RedisUnavailable, ReplyError, OSError, asyncio.TimeoutError) as exc:
                if isinstance(exc, ReplyError):
                    complain(exc, "PUBSUB NUMSUB", None, self.hub.presence_shard.spec)
                gone = set(names.values())  # Redis unreachable: its inboxes may be lost too
            self._count(gone)

    def _count(self, gone: set[str]) -> None:
        for process in list(self._watched):
            if process not in gone:
                self._missed.pop(process, None)
                continue
            self._missed[process] = self._missed.get(process, 0) + 1
            if self._missed[process] >= self.misses:
                logger.warning("process %s is gone; failing its %d connection(s)",
                               process, len(self._watched[process]))
                for peer in self._watched.pop(process):
                    peer.process_gone(PeerLost(f"process {process} went away"))
                self._missed.pop(process, None)

    async def close(self) -> None:
        self._watched.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
