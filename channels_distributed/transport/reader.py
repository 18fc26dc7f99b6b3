"""Readers: one blocking multi-pop loop per Redis list this process receives from, dispatching
entries to local waiters.

A layer's local list carries every process-local channel (``owner!suffix``) one event loop owns,
tagged with the channel's name, and a process's inbox its forwarded connections' entries; one
reader pops such a list in batches (``BLMPOP ... COUNT 512`` on Redis 7, ``BLPOP`` then
``LPOP n`` on 6.2) and hands each entry straight to the waiting ``receive()``. A normal channel
(competing consumers) has a reader that pops only as many entries as it has waiters.

Readers pop only while someone is waiting — a local list's reader also for a short while after
its last receive (LINGER), which takes a Redis round trip off the next receive — and never while a
local buffer is at capacity. So a process that stops receiving lets its list fill to capacity and
senders get ChannelFull instead of the process buffering without bound. Entries still buffered
when the reader closes go back to the head of the list.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import ProtocolError, RedisRefused, RedisUnavailable, ReplyError
from ..protocol.codec import decode_entry, encode_entry
from .backoff import Backoff
from .refusals import refusal, report
from .resp import ConnectionLost, RespLink, quiet
from .scripts import GIVE_BACK
from .topology import Shard
from .turns import let_woken_write

__all__ = ["Reader"]

logger = logging.getLogger(__name__)

BLOCK_SECONDS = 1.0
LINGER = 2.0
_GRACE = 2.0  # beyond BLOCK_SECONDS, before a silent blocking connection is dropped
_GIVE_BACK_PART = 512  # entries per script call: Lua's unpack() has a stack limit
SWEEP_MS = 1000
BATCH = 512
_RETRY_MAX = 0.5
_ANSWERED_RETRY = 0.1

Item = tuple[int, bytes]  # (expires_at_ms, payload)


class Reader:
    """Pops one Redis list and delivers its entries to local waiters by channel name."""

    def __init__(self, shard: Shard, key: str, *, batch: int, capacity_of: Callable[[str], int],
                 clock_ms: Callable[[], int], least_capacity: int = 1) -> None:
        self.shard = shard
        self.key = key
        self._batch = batch
        self._capacity_of = capacity_of
        # No channel's capacity is below it: a shorter buffer needs no capacity_of() call.
        self._least_capacity = least_capacity
        self._clock_ms = clock_ms
        self._buffers: dict[str, collections.deque[Item]] = {}  # never holds an empty one
        self._full: set[str] = set()  # channels whose buffer is at capacity
        self._next_sweep = 0
        # A channel's first waiter, and those after it (several receive() on one channel at once):
        # no deque made and dropped per message.
        self._waiters: dict[str, asyncio.Future[Item]] = {}
        self._queued: dict[str, collections.deque[asyncio.Future[Item]]] = {}
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._warned = False
        self._last_demand = 0.0
        #: On Redis Cluster, the shard now serving a key (Topology.shard_for): a reader whose
        #: pops failed asks it before popping again, so it follows its list if the slot moved.
        self.relocate: Callable[[str], Shard] | None = None
        # A reader belongs to one loop; kept, as get_running_loop() is a getpid() syscall on
        # Python < 3.12 and get() runs for every message.
        self._loop = asyncio.get_running_loop()

    # Receiving (RedisChannelLayer.receive calls take and withdraw itself: no coroutine of the
    # reader's per message; get() is the same for other callers) ---------------------------------
    async def get(self, channel: str) -> Item:
        """The next unexpired (expires_at_ms, payload) for ``channel``."""
        item = self.take(channel)
        if not isinstance(item, asyncio.Future):
            return item
        try:
            return await item
        except BaseException as exc:
            self.withdraw(channel, item, exc)
            raise

    def take(self, channel: str) -> Item | asyncio.Future[Item]:
        """The next unexpired item buffered for ``channel``, else a future for it (``withdraw``
        it if it fails or is cancelled)."""
        buffer = self._buffers.get(channel)
        if buffer is not None:
            item = self._take_buffered(channel, buffer)
            if item is not None:
                return item
        future: asyncio.Future[Item] = self._loop.create_future()
        if channel in self._waiters:  # (rare: several receive() on one channel at once)
            self._queued.setdefault(channel, collections.deque()).append(future)
        else:
            self._waiters[channel] = future
        self._waiting += 1
        if self._task is None or self._task.done():
            self._ensure_running()
        return future

    def withdraw(self, channel: str, future: asyncio.Future[Item], exc: BaseException) -> None:
        """``future`` of ``take`` ended with ``exc`` rather than an item."""
        if not future.done() or future.cancelled():
            self._waiting -= 1  # never delivered (delivery counts it down)
        elif isinstance(exc, asyncio.CancelledError) and future.exception() is None:
            # Delivered in the same instant the caller gave up: keep it for the next one.
            self._buffers.setdefault(channel, collections.deque()).appendleft(future.result())
        if self._waiters.get(channel) is future:
            del self._waiters[channel]
            self._next_waiter(channel)
        elif future in self._queued.get(channel, ()):
            self._queued[channel].remove(future)
            if not self._queued[channel]:
                del self._queued[channel]

    def _next_waiter(self, channel: str) -> None:  # the first waiter has gone: the next moves up
        queued = self._queued.get(channel)
        if queued is not None:
            self._waiters[channel] = queued.popleft()
            if not queued:
                del self._queued[channel]

    def _take_buffered(self, channel: str, buffer: collections.deque[Item]) -> Item | None:
        # A buffer lives only while it holds something: a process makes a channel per
        # connection, and an empty buffer left for each one was memory never given back.
        now = self._clock_ms()
        found = None
        while buffer:
            item = buffer.popleft()
            if item[0] >= now:
                found = item
                break
        if not buffer:
            del self._buffers[channel]
        if self._full:
            self._full.discard(channel)
        return found

    def _ensure_running(self) -> None:
        if (self._task is None or self._task.done()) and not self._closed:
            self._task = self._loop.create_task(self._run())

    # The pop loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        link: RespLink | None = None
        backoff = Backoff(0.02, _RETRY_MAX)
        try:
            while True:
                while (self._waiting > 0 or self._lingering()) and not self._closed:
                    try:
                        if link is None or not link.is_open:
                            link = await self.shard.blocking_link()
                        raws = await self._bounded_pop(link)
                    except RedisRefused as exc:
                        self._refused(exc)  # waiting would not fix it: the receivers hear it
                        return
                    except (RedisUnavailable, ConnectionLost, OSError) as exc:
                        # A server that answered "not now" (CLUSTERDOWN during a failover,
                        # LOADING), or a cluster shard (whose replica may take over any
                        # moment), is asked again soon: receives resume as soon as it is fine.
                        answered = ((link is not None and link.is_open)
                                    or self.shard.cluster is not None)
                        self._drop(link)
                        link = None
                        self._warn(exc)
                        pause = backoff.next()  # wait for Redis to come back; never give up
                        await asyncio.sleep(min(pause, _ANSWERED_RETRY) if answered else pause)
                        if self.relocate is not None:
                            self.shard = self.relocate(self.key)
                        continue
                    if self._warned:  # (set by every failure: the only time to reset)
                        backoff.reset()
                        logger.warning("Redis is reachable again; receiving from %s", self.key)
                        self._warned = False
                    self.deliver(raws)
                    if raws:
                        await let_woken_write()  # their answers leave before the next pop
                if self._batch == 0 and self._buffers and link is not None and not self._closed:
                    # (a buffer is deleted once empty, so this means entries are waiting)
                    await self._give_back(link)
                    continue  # a receive() that came meanwhile found this task still running
                break
        finally:
            if link is not None:
                self.shard.release_blocking(link)

    def _lingering(self) -> bool:
        if self._batch == 0 or self._last_demand == 0.0:
            return False  # competing consumers pop only for their waiters
        if self._loop.time() > self._last_demand + LINGER:
            return False
        return not self._full  # kept up to date as buffers fill and drain: no scan here

    async def _give_back(self, link: RespLink) -> None:
        # Competing consumers: entries popped for waiters that left meanwhile go back to the
        # head of the list, where another process can take them.
        count, commands = self.give_back_commands()
        if not count:
            return
        try:
            await asyncio.gather(*link.call_many(commands))
        except ReplyError as exc:
            logger.error("lost %d messages of %s: %s", count, self.key,
                         refusal(exc, "EVAL (LPUSH, PTTL, PEXPIRE)", self.key, self.shard.spec))
        except RedisUnavailable as exc:
            logger.warning("lost %d messages of %s: %s", count, self.key, exc)

    def _refused(self, error: RedisRefused) -> None:
        report(error)
        for future in self._every_waiter():
            if not future.done():
                future.set_exception(error)
                self._waiting -= 1

    def _every_waiter(self) -> list[asyncio.Future[Item]]:  # each waiting future, taken off
        futures = list(self._waiters.values())
        for queued in self._queued.values():
            futures.extend(queued)
        self._waiters, self._queued = {}, {}
        return futures

    def _drop(self, link: RespLink | None) -> None:
        if link is not None:
            link.close()

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            logger.warning("cannot receive from %s, retrying until Redis is back: %s",
                           self.key, exc)
            self._warned = True

    async def _bounded_pop(self, link: RespLink) -> list[bytes]:
        # Redis ends the block after BLOCK_SECONDS; a reply later than that means the connection
        # is half-open (partition, failover, paused VM): drop it rather than wait forever.
        watchdog = self._loop.call_later(BLOCK_SECONDS + _GRACE, link.close)
        try:
            return await self._pop(link)
        finally:
            watchdog.cancel()

    async def _pop(self, link: RespLink) -> list[bytes]:
        count = self._batch if self._batch > 0 else max(self._waiting, 1)
        if self.shard.has_blmpop is not False:
            try:
                reply = await link.call("BLMPOP", BLOCK_SECONDS, 1, self.key, "LEFT",
                                        "COUNT", count)
                self.shard.has_blmpop = True
                return list(reply[1]) if reply else []
            except ReplyError as exc:
                if "unknown command" not in str(exc).lower():
                    raise refusal(exc, "BLMPOP", self.key, self.shard.spec) from None
                self.shard.has_blmpop = False  # Redis 6.2: BLPOP then LPOP
        try:
            reply = await link.call("BLPOP", self.key, BLOCK_SECONDS)
            if not reply:
                return []
            raws = [reply[1]]
            if count > 1:
                more = await link.call("LPOP", self.key, count - 1)
                raws.extend(more or ())
        except ReplyError as exc:
            raise refusal(exc, "BLPOP/LPOP", self.key, self.shard.spec) from None
        return raws

    # Dispatch ----------------------------------------------------------------------------------
    def deliver(self, raws: list[bytes]) -> None:
        now = self._clock_ms()
        handed = False
        if now >= self._next_sweep:
            self._sweep(now)
        for raw in raws:
            try:
                target, expires, payload = decode_entry(raw)
            except ProtocolError as exc:
                logger.error("skipping garbage on %s: %s (first bytes %r)",
                             self.key, exc, bytes(raw[:32]))
                continue
            if expires < now:
                continue  # older than the layer's expiry: never delivered
            item = (expires, payload)
            if isinstance(target, str):
                handed = self._hand_over(target, item) or handed
            else:
                handed = self._hand_over_each(target, item) or handed
        if handed:
            self._last_demand = self._loop.time()

    def _hand_over_each(self, channels: list[str], item: Item) -> bool:
        """``_hand_over`` for each member of a group message's list (True if any was waiting),
        without a call per member where nothing but a hand-over or an append is to be done."""
        if self._queued:  # (rare) several receive() on one channel: _hand_over sorts it out
            return any([self._hand_over(channel, item) for channel in channels])
        waiters, buffers, room = self._waiters, self._buffers, self._least_capacity - 1
        handed = False
        for channel in channels:
            future = waiters.get(channel)
            if future is None:
                buffer = buffers.get(channel)
                if buffer is not None and len(buffer) < room:  # below every capacity
                    buffer.append(item)
                    continue
            elif not future.done():
                del waiters[channel]
                future.set_result(item)
                self._waiting -= 1
                handed = True
                continue
            handed = self._hand_over(channel, item) or handed
        return handed

    def _hand_over(self, channel: str, item: Item) -> bool:
        """Give ``item`` to a waiting receive() (True), else buffer it."""
        future = self._waiters.pop(channel, None)
        while future is not None:
            if self._queued:
                self._next_waiter(channel)
            if not future.done():
                future.set_result(item)
                self._waiting -= 1  # counted here so the pop loop never pops for it again
                return True
            future = self._waiters.pop(channel, None)  # (cancelled, its withdraw() not run yet)
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = collections.deque()
        buffer.append(item)
        if len(buffer) < self._least_capacity:
            return False
        capacity = self._capacity_of(channel)
        if len(buffer) >= capacity:
            self._full.add(channel)  # the list is not popped again until it drains
            if len(buffer) > capacity:
                buffer.popleft()
                logger.warning("dropped the oldest message of %s: more than %d waiting in this "
                               "process and nobody receiving", channel, capacity)
        return False

    def _sweep(self, now: int) -> None:
        """Drop buffered entries past their expiry: those of a channel that is never received
        on (its connection closed first) would otherwise stay for the life of the process.
        Runs at most once per SWEEP_MS, from the pop loop: no send or receive pays for it."""
        self._next_sweep = now + SWEEP_MS
        for channel, buffer in list(self._buffers.items()):
            if min(expires for expires, _ in buffer) >= now:
                continue
            kept = [item for item in buffer if item[0] >= now]
            self._full.discard(channel)
            if kept:
                self._buffers[channel] = collections.deque(kept)
            else:
                del self._buffers[channel]

    def give_back_commands(self) -> tuple[int, list[tuple[Any, ...]]]:
        """How many entries are buffered, and the commands that put them back at the head of
        the list, in order, keeping the list alive as long as its latest entry (the buffers
        are emptied). Each command is one script: it pushes and extends the expiry, or, if
        this Redis user may not, does nothing."""
        latest = max((expires for buffer in self._buffers.values() for expires, _ in buffer),
                     default=0)
        entries = self.unclaimed()
        ttl_ms = max(latest - self._clock_ms(), 1000)
        commands = []
        # Newest part first: each LPUSH puts its part in front of the parts pushed before.
        for end in range(len(entries), 0, -_GIVE_BACK_PART):
            part = entries[max(end - _GIVE_BACK_PART, 0):end]
            # Sent as source: it runs only when messages are given back, which is rare.
            commands.append(GIVE_BACK.source_command([self.key], [ttl_ms, *reversed(part)]))
        return len(entries), commands

    def unclaimed(self) -> list[bytes]:
        """Buffered entries, encoded again, oldest first; the buffers are emptied."""
        entries = [encode_entry(channel, expires, payload)
                   for channel, buffer in self._buffers.items() for expires, payload in buffer]
        self._buffers.clear()
        self._full.clear()
        return entries

    def abandon(self) -> None:
        """Its event loop was closed without closing this reader: nothing runs any more."""
        self._closed = True
        quiet(self._task)

    async def close(self) -> None:
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for future in self._every_waiter():
            future.cancel()
