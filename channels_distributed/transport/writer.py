"""Batched writes: every push made during one event-loop turn to the same key goes out as one
capacity-checked multi-value push, and pushes to different keys as one pipelined write.

Why, and the figure behind it: docs/design.rst, "Batching".
Batches for one shard are written one after another on one link, so per-key FIFO order holds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import ChannelFull, RedisRefused, RedisUnavailable, ReplyError
from .cluster import asking, redirection
from .connection import Shard
from .refusals import refusal, report
from .resp import ConnectionLost, RespLink, quiet
from .scripts import ACKED_PUSH, PUSH, load

__all__ = ["BatchWriter"]

logger = logging.getLogger("channels_distributed.transport")

# Lua's unpack() has a stack limit; stay far below it.
_MAX_ENTRIES_PER_CALL = 512
_REPLY_TIMEOUT = 10.0


# A pending push: (entry bytes, future). Per key we also keep (capacity, ttl_ms).
_Items = list[tuple[bytes, "asyncio.Future[None]"]]
_Pending = dict[str, tuple[int, int, _Items]]
_Call = tuple[str, int, int, _Items]
# Pending acknowledged pushes: (processing list, list, capacity, ttl_ms) -> [(request, entry,
# future)].
_AckedItems = list[tuple[bytes, str, bytes, "asyncio.Future[Any]"]]
_Acked = dict[tuple[str, str, int, int], _AckedItems]


class BatchWriter:
    """Collects pushes for one shard and writes them in batches, pipelined on one link.

    Batches are written from a ``call_soon`` callback (no task, no extra loop turn) and settled
    from reply callbacks. Order holds because every batch goes down the same connection and
    Redis answers in order; only (re)connecting needs a task, and batches wait for it in order.
    """

    def __init__(self, shard: Shard, describe: Callable[[str], str] = str,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.shard = shard
        # Kept rather than looked up per push: get_running_loop() is a getpid() syscall
        # on Python < 3.12.
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._describe = describe
        self._pending: _Pending = {}
        self._acked: _Acked = {}
        self._scheduled = False
        self._connecting: asyncio.Task[None] | None = None
        self._link: RespLink | None = None  # the link the push script was loaded on
        self._inflight = 0
        self._settled = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._idle: asyncio.Future[None] | None = None
        #: On Redis Cluster, the writer of a key's shard (LoopState.writer_for): a push
        #: answered MOVED goes there once the slot map is refreshed.
        self.redirect: Callable[[str], BatchWriter] | None = None

    def push(self, key: str, entry: bytes, capacity: int, ttl_ms: int) -> asyncio.Future[None]:
        """Queue ``entry`` for ``key``; the future fails with ChannelFull if it did not fit."""
        loop = self._loop
        future: asyncio.Future[None] = loop.create_future()
        slot = self._pending.get(key)
        if slot is None:
            self._pending[key] = (capacity, ttl_ms, [(entry, future)])
        else:
            slot[2].append((entry, future))
        if not self._scheduled:
            # Everything pushed during this loop turn joins one batch.
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def acked_push(self, ack_key: str, ack_entry: bytes, state_key: str, key: str,
                   entry: bytes, capacity: int, ttl_ms: int) -> asyncio.Future[Any]:
        """Acknowledge ``ack_entry`` and push ``entry`` atomically, in the next batch.

        Resolves to -1 (not acknowledged: nothing pushed), 0 (list full) or 1. Both keys must
        be on this writer's shard.
        """
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()
        group = (ack_key, key, capacity, ttl_ms)
        items = self._acked.get(group)
        if items is None:
            self._acked[group] = [(ack_entry, state_key, entry, future)]
        else:
            items.append((ack_entry, state_key, entry, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    async def wait_idle(self) -> None:
        """Until every push made so far has been answered."""
        while (self._pending or self._acked or self._connecting is not None
               or self._inflight):
            if self._idle is None or self._idle.done():
                self._idle = self._loop.create_future()
            await asyncio.shield(self._idle)

    def abandon(self) -> None:
        """Its event loop was closed without closing this writer: nothing runs any more."""
        quiet(self._connecting)

    def _flush(self) -> None:
        self._scheduled = False
        if not (self._pending or self._acked) or self._connecting is not None:
            return  # a connect in progress flushes when it is done
        link = self.shard.connected_link
        if link is None or link is not self._link:
            self._connecting = self._loop.create_task(self._connect_then_flush())
            return
        batch, self._pending = self._pending, {}
        acked, self._acked = self._acked, {}
        self._send(link, batch, acked)

    async def _connect_then_flush(self) -> None:
        try:
            link = await self.shard.link()
            # Loaded first on every new connection (a restarted Redis has no scripts), so an
            # EVALSHA finds its script and never needs a re-send (which could reorder).
            load(link, (PUSH, ACKED_PUSH))
            self._link = link
        except (RedisUnavailable, RedisRefused) as exc:
            # Nothing was sent: a clear error, never a duplicate. (A refused login is logged
            # at ERROR by open_link.)
            self._fail_queued(exc)
            return
        except BaseException as exc:
            self._fail_queued(RedisUnavailable(f"send interrupted: {exc!r}"))
            raise
        finally:
            self._connecting = None
            self._wake_idle()
        self._flush()

    def _fail_queued(self, error: BaseException) -> None:
        batch, self._pending = self._pending, {}
        acked, self._acked = self._acked, {}
        _fail_all(_calls(batch), error)
        _fail([future for items in acked.values() for *_, future in items], error)

    def _send(self, link: RespLink, batch: _Pending, acked: _Acked) -> None:
        calls = _calls(batch)
        acked_calls = _acked_calls(acked)
        # Acknowledged pushes first: an acknowledged push precedes later events of its list.
        commands = [ACKED_PUSH.command(keys, args) for keys, args, _ in acked_calls]
        commands += [PUSH.command([key], [cap, ttl, *(e for e, _ in items)])
                     for key, cap, ttl, items in calls]
        try:
            futures = link.call_many(commands)
        except ConnectionLost:
            # Not written at all: put it back in front of anything newer and reconnect.
            self._pending = _merge(batch, self._pending)
            for group, items in self._acked.items():
                acked.setdefault(group, []).extend(items)
            self._acked = acked
            self._link = None
            self._flush()
            return
        self._inflight += len(commands)
        for acked_call, future in zip(acked_calls, futures):
            future.add_done_callback(functools.partial(self._on_acked, link, acked_call))
        for call, future in zip(calls, futures[len(acked_calls):]):
            future.add_done_callback(functools.partial(self._on_reply, link, call))
        self._arm_watchdog(link)

    def _on_acked(self, link: RespLink, call: _AckedCall, future: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        self._settled += 1
        keys, args, targets = call
        if future.cancelled():
            error: BaseException | None = ConnectionLost("acknowledged push cancelled")
        else:
            error = future.exception()
        if error is not None:
            retry = ACKED_PUSH.retry(link, error, keys, args)  # after a SCRIPT FLUSH
            if retry is not None:
                self._inflight += 1
                retry.add_done_callback(functools.partial(self._on_acked, link, call))
                return
            _drop_if_replica(link, error)
            _fail(targets, self._refusal(error, "EVALSHA (LREM, EXISTS, LLEN, RPUSH, PEXPIRE)",
                                         keys[1]))
        else:
            results = future.result()
            if len(results) > len(targets):
                self._expiry_refused(keys[1], results[-1])
            for target, result in zip(targets, results):
                if not target.done():
                    target.set_result(int(result))
        self._wake_idle()

    def _on_reply(self, link: RespLink, call: _Call, future: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        self._settled += 1
        if future.cancelled():
            reply: Any = ConnectionLost("push cancelled")
        else:
            reply = future.exception() or future.result()
        if isinstance(reply, ReplyError):
            key, cap, ttl, items = call
            retry = PUSH.retry(link, reply, [key], [cap, ttl, *(e for e, _ in items)])
            if retry is not None:  # after a SCRIPT FLUSH
                self._inflight += 1
                retry.add_done_callback(functools.partial(self._on_reply, link, call))
                return
            moved = redirection(reply) if self.redirect is not None else None
            if moved is not None:
                self._inflight += 1
                self._loop.create_task(self._follow(call, *moved))
                return
        _drop_if_replica(link, reply)
        self._settle(call, reply)
        self._wake_idle()

    async def _follow(self, call: _Call, kind: str, host: str, port: int) -> None:
        # Redis Cluster answered MOVED (the slot lives elsewhere now) or ASK (it is being
        # migrated): the push did not run, so it is sent where the slot is, once.
        key, capacity, ttl, items = call
        try:
            if kind == "ASK":
                command = PUSH.source_command([key], [capacity, ttl, *(e for e, _ in items)])
                [reply] = await asking(self.shard.spec, host, port, [command])
                self._settle(call, reply)
                return
            cluster = self.shard.cluster
            if cluster is not None:
                await cluster.refresh()
            writer = self.redirect(key) if self.redirect is not None else self
            if writer is self and (cluster is None
                                   or cluster.address(self.shard.index) != (host, port)):
                # (The same shard is right only after a failover: its new primary.)
                raise RedisUnavailable(f"Redis Cluster moved the slot of {key!r} to "
                                       f"{host}:{port}, which its slot map does not show yet")
            for entry, future in items:
                _chain(writer.push(key, entry, capacity, ttl), future)
        except (RedisUnavailable, ReplyError) as exc:
            self._settle(call, exc)
        finally:
            self._inflight -= 1
            self._wake_idle()

    def _wake_idle(self) -> None:
        if (self._idle is not None and not self._idle.done() and not self._inflight
                and not self._pending and not self._acked and self._connecting is None):
            self._idle.set_result(None)

    def _arm_watchdog(self, link: RespLink) -> None:
        # A server that accepts commands but stops answering gets its link dropped, which fails
        # the waiting pushes with ConnectionLost instead of hanging them.
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(_REPLY_TIMEOUT, self._check_stall, link,
                                             self._settled)

    def _check_stall(self, link: RespLink, settled_before: int) -> None:
        self._watchdog = None
        if not self._inflight:
            return
        current = self._link if self._link is not None else link
        if self._settled == settled_before:
            logger.error("Redis %s did not answer within %g s; reconnecting",
                         self.shard.spec.describe(), _REPLY_TIMEOUT)
            link.close()
            current.close()  # the pushes in flight may be on a link made since it was armed
            return
        self._arm_watchdog(current)

    def _refusal(self, error: BaseException, command: str, key: str) -> BaseException:
        if not isinstance(error, ReplyError):
            return error  # ConnectionLost and the like: already a RedisUnavailable
        refused = refusal(error, command, key, self.shard.spec)
        if isinstance(refused, RedisRefused):
            report(refused)  # also for the distributor and workers, who only log sends
        return refused

    def _expiry_refused(self, key: str, error: Any) -> None:
        # Redis 6.2 cannot check first: the entries went in, only their expiry was refused.
        text = error.decode() if isinstance(error, bytes) else str(error)
        report(RedisRefused(
            f"Redis {self.shard.spec.describe()} refused to expire {self._describe(key)}: "
            f"{text}. The messages were delivered, but the list will not expire: grant the "
            f"Redis user +pexpire (see README.rst, 'Redis ACL users')"))

    def _settle(self, call: _Call, reply: Any) -> None:
        key, capacity, _, items = call
        if isinstance(reply, BaseException):
            _fail([f for _, f in items],
                  self._refusal(reply, "EVALSHA (LLEN, RPUSH, PEXPIRE)", key))
            return
        if type(reply) is list:
            self._expiry_refused(key, reply[1])
            reply = reply[0]
        accepted = int(reply)
        for position, (_, future) in enumerate(items):
            if future.done():
                continue
            if position < accepted:
                future.set_result(None)
            else:
                future.set_exception(ChannelFull(
                    f"{self._describe(key)} is full ({capacity} messages waiting); "
                    "its reader is slower than its senders"))


def _drop_if_replica(link: RespLink, error: Any) -> None:
    # READONLY: this connection reached a replica (a Sentinel failover under way). Dropped, so
    # that the next batch connects to the master again instead of failing here until then.
    if isinstance(error, ReplyError) and str(error).startswith("READONLY"):
        link.close()


def _chain(source: asyncio.Future[None], target: asyncio.Future[None]) -> None:
    def copy(done: asyncio.Future[None]) -> None:
        if target.done():
            return
        error = done.exception() if not done.cancelled() else ConnectionLost("push cancelled")
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(None)
    source.add_done_callback(copy)


def _fail(futures: list[asyncio.Future[None]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _fail_all(calls: list[Any], error: BaseException) -> None:
    for call in calls:
        _fail([f for _, f in call[3]], error)


def _calls(batch: _Pending) -> list[_Call]:
    calls = []
    for key, (capacity, ttl, items) in batch.items():
        for start in range(0, len(items), _MAX_ENTRIES_PER_CALL):
            calls.append((key, capacity, ttl, items[start : start + _MAX_ENTRIES_PER_CALL]))
    return calls


_AckedCall = tuple[list[Any], list[Any], list["asyncio.Future[Any]"]]


def _acked_calls(acked: _Acked) -> list[_AckedCall]:
    calls: list[_AckedCall] = []
    for (ack_key, key, capacity, ttl), items in acked.items():
        for start in range(0, len(items), _MAX_ENTRIES_PER_CALL):
            part = items[start : start + _MAX_ENTRIES_PER_CALL]
            args: list[Any] = [capacity, ttl]
            for request, _, entry, _ in part:
                args += (request, entry)
            keys = [ack_key, key, *(state for _, state, _, _ in part)]
            calls.append((keys, args, [future for *_, future in part]))
    return calls


def _merge(older: _Pending, newer: _Pending) -> _Pending:
    merged: _Pending = {key: (cap, ttl, list(items)) for key, (cap, ttl, items) in older.items()}
    for key, (cap, ttl, items) in newer.items():
        if key in merged:
            merged[key][2].extend(items)
        else:
            merged[key] = (cap, ttl, list(items))
    return merged
