"""Reliable route queues: take, acknowledge, give back, and reap a dead worker's requests.

A distributor pushes a ``connect`` entry on ``<prefix>:{rt:<key>}:q``. A worker takes it by moving
it atomically into its own processing list ``<prefix>:{rt:<key>}:p:<worker>`` (``BLMOVE`` when the
queue is empty, a script taking several at once when it is not) and acknowledges it by removing
it (``LREM``). If the acknowledgement removes nothing, a reaper already gave the request back to
the queue and the worker must not run it. Requests a dead worker took but never acknowledged go
back to the head of the queue; the reaper runs under a ``SET NX PX`` lock per route, so one
worker per route does it at a time. Every key here shares the route's hash tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from ..exceptions import RedisUnavailable, ReplyError
from ..protocol.envelope import STATE_TTL_MS
from ..protocol.keys import DistKeys
from .liveness import absent
from .refusals import complain
from .resp import ConnectionLost, RespLink
from .scripts import ACK, GIVE_UP, REQUEUE, TAKE
from .topology import Shard

__all__ = ["RouteQueue", "give_up"]

logger = logging.getLogger(__name__)

BLOCK_SECONDS = 1.0
REAP_LOCK_MS = 2000
# The route's registry and each worker's processing list live this long after their last
# refresh (every second, by each live worker): long enough for a request that a dying worker
# held to be given back by a worker started before the request's deadline, and no longer, so a
# route whose last worker was killed leaves nothing behind. The deadlines are the distributor's
# (worker_timeout, default 5 s); a worker learns how far ahead they lie from the requests it
# takes (``RouteQueue.horizon_ms``).
MIN_TTL_MS = 6_000
MAX_TTL_MS = 120_000
_TTL_MARGIN_MS = 1_000


class RouteQueue:
    """One route key (or one sub-queue of a spread route key) as seen by one worker."""

    def __init__(self, keys: DistKeys, shard: Shard, route: str, worker: str,
                 name: str | None = None) -> None:
        """``route``: the route key (the figures count by it); ``name``: the sub-queue's
        internal name its keys are made of (``protocol/spread.py``), the key itself if None."""
        self.keys = keys
        self._shard = shard
        self.route = route
        self.name = route if name is None else name
        self.worker = worker
        self.queue = keys.queue(self.name)
        self.processing = keys.processing(self.name, worker)
        self.registry = keys.registry(self.name)
        self.horizon_ms = 0  # the furthest deadline ahead seen in a request taken (ms)
        self._acks: list[tuple[bytes, str, asyncio.Future[int]]] = []
        self._blocking: RespLink | None = None  # the take's own link, never shared
        self._writes: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()  # kept: a getpid() syscall on Python < 3.12

    @property
    def shard(self) -> Shard:
        """The shard serving this route's keys: on Redis Cluster, where the slot is now (the
        take loop drops its link on an error, and its next link comes from here)."""
        locate = self._shard.locate
        return locate(self.queue) if locate is not None else self._shard

    @contextlib.contextmanager
    def _refusals(self, command: str) -> Iterator[None]:
        # An error from Redis that waiting will not fix is logged at ERROR with its fix; the
        # worker's loops retry whatever happens, and must not do so silently.
        try:
            yield
        except ReplyError as exc:
            raise complain(exc, command, self.queue, self.shard.spec) from None

    async def take(self, count: int) -> list[bytes]:
        """Up to ``count`` waiting requests, without blocking."""
        link = await self.shard.link()
        with self._refusals("EVALSHA (LMOVE)"):
            return list(await TAKE.run(link, [self.queue, self.processing], [count]))

    async def take_blocking(self) -> bytes | None:
        """One request, waiting at most a second for it, on this queue's own blocking link.
        Any error drops that link (it may be parked in BLMOVE: never reused); the next call
        makes a new one."""
        link = self._blocking
        if link is None or not link.is_open:
            link = self._blocking = await self.shard.blocking_link()
        # A reply much later than the block time means a half-open connection: drop it
        # instead of waiting forever.
        watchdog = self._loop.call_later(BLOCK_SECONDS + 2.0, link.close)
        try:
            with self._refusals("BLMOVE"):
                reply = await link.call("BLMOVE", self.queue, self.processing, "LEFT", "RIGHT",
                                        BLOCK_SECONDS)
        except BaseException:
            self.close()
            raise
        finally:
            watchdog.cancel()
        return reply if isinstance(reply, bytes) else None

    def close(self) -> None:
        """Drop the blocking link (the worker stops taking)."""
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None

    def ack(self, entry: bytes, conn: str) -> asyncio.Future[int]:
        """Acknowledge ``entry`` (request ``conn``): OURS (run it), REAPED or GIVEN_UP (do
        not). Batched per loop turn."""
        future: asyncio.Future[int] = self._loop.create_future()
        if not self._acks:
            self._loop.call_soon(self._flush_acks)
        self._acks.append((entry, self.state(conn), future))
        return future

    def state(self, conn: str) -> str:
        """The given-up mark of request ``conn`` taken here (GIVE_UP sets it)."""
        return self.keys.state(self.name, conn)

    def _flush_acks(self) -> None:
        batch, self._acks = self._acks, []
        task = self._loop.create_task(self._write_acks(batch))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_acks(self, batch: list[tuple[bytes, str, asyncio.Future[int]]]) -> None:
        try:
            link = await self.shard.link()
            with self._refusals("EVALSHA (LREM, DEL, PEXPIRE)"):
                replies = await ACK.run(link, [self.processing, *(s for _, s, _ in batch)],
                                        [self.ttl_ms, *(entry for entry, _, _ in batch)])
        except (RedisUnavailable, ReplyError, ConnectionLost) as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(RedisUnavailable(f"acknowledgement failed: {exc}"))
            return
        for (*_, future), mine in zip(batch, replies):
            if not future.done():
                future.set_result(int(mine))

    async def taken(self) -> list[bytes]:
        """What this worker's processing list holds (to find requests a dropped link took)."""
        link = await self.shard.link()
        with self._refusals("LRANGE"):
            return list(await link.call("LRANGE", self.processing, 0, -1))

    async def give_back(self) -> int:
        """Return every request still in this worker's processing list (shutdown)."""
        link = await self.shard.link()
        with self._refusals("EVALSHA (LMOVE, PTTL, PEXPIRE)"):
            return int(await REQUEUE.run(link, [self.processing, self.queue], [self.ttl_ms]))

    def saw_deadline(self, ahead_ms: int) -> None:
        """A request taken had its deadline ``ahead_ms`` from now."""
        if ahead_ms > self.horizon_ms:
            self.horizon_ms = min(ahead_ms, MAX_TTL_MS)

    @property
    def ttl_ms(self) -> int:
        return max(MIN_TTL_MS, self.horizon_ms + _TTL_MARGIN_MS)

    async def register(self) -> None:
        """Every second while alive: stay in the route's registry, and keep it and this
        worker's processing list alive. A dead worker's list is normally reaped within a
        second or two by another worker of the route; if none is left, the registry and the
        lists expire once every request they could hold is past its deadline."""
        link = await self.shard.link()
        ttl = self.ttl_ms
        with self._refusals("SADD, PEXPIRE"):
            await asyncio.gather(*link.call_many([("SADD", self.registry, self.worker),
                                                  ("PEXPIRE", self.registry, ttl),
                                                  ("PEXPIRE", self.processing, ttl)]))

    async def unregister(self) -> None:
        link = await self.shard.link()
        await link.call("SREM", self.registry, self.worker)

    async def empty(self) -> bool:
        """Whether nothing waits here and no registered worker (this one too) holds a request
        taken here: a sub-queue no edge announces any more may then be left (worker/spread.py),
        with nothing for a reaper to give back either."""
        link = await self.shard.link()
        with self._refusals("LLEN, SMEMBERS"):
            members = {m.decode() for m in await link.call("SMEMBERS", self.registry)}
            lists = [self.queue, *(self.keys.processing(self.name, m)
                                   for m in sorted(members | {self.worker}))]
            lengths = await asyncio.gather(*link.call_many([("LLEN", k) for k in lists]))
        return not any(lengths)

    async def reap(self, presence: Shard) -> int:
        """Give back the requests of dead workers on this route (one reaper at a time)."""
        with self._refusals("SET, SMEMBERS, PUBSUB NUMSUB, EVALSHA (LMOVE), SREM"):
            return await self._reap(presence)

    async def _reap(self, presence: Shard) -> int:
        link = await self.shard.link()
        locked = await link.call("SET", self.keys.reap_lock(self.name), self.worker,
                                 "NX", "PX", REAP_LOCK_MS)
        if not locked:
            return 0
        members = [m.decode() for m in await link.call("SMEMBERS", self.registry)]
        others = [m for m in members if m != self.worker]
        if not others:
            return 0
        gone = await absent(await presence.link(), [self.keys.presence(m) for m in others])
        dead = [m for m in others if self.keys.presence(m) in gone]
        total = 0
        for worker in dead:
            moved = int(await REQUEUE.run(link, [
                self.keys.processing(self.name, worker), self.queue], [self.ttl_ms]))
            await link.call("SREM", self.registry, worker)
            if moved:
                logger.warning("gave %d request(s) of dead worker %s back to route %s",
                               moved, worker, self.name)
            total += moved
        return total

    def drop(self, entry: bytes) -> None:
        """Remove a request that will not be run (garbage, expired) from the processing list."""
        task = self._loop.create_task(self._remove(entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _remove(self, entry: bytes) -> None:
        try:
            link = await self.shard.link()
            await link.call("LREM", self.processing, 1, entry)
        except (RedisUnavailable, ReplyError, ConnectionLost) as exc:
            logger.warning("could not drop a request from %s: %s", self.processing, exc)


async def give_up(shard: Shard, queue: str, state: str, entry: bytes) -> bool:
    """The distributor's side, at a request's deadline: withdraw ``entry`` from ``queue`` (True),
    or, when a worker took it already, set its given-up mark ``state`` (False), so that
    worker's acknowledgement answers ``GIVEN_UP`` and the request never runs late."""
    link = await shard.link()
    return int(await GIVE_UP.run(link, [queue, state], [entry, STATE_TTL_MS])) == 1
