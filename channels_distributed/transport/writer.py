"""Batched writes: every push made during one event-loop turn to the same key goes out as one
capacity-checked multi-value push, and pushes to different keys as one pipelined write.

Why, and the figure behind it: docs/design.rst, "Batching".
Batches for one shard are written one after another on one link, so per-key FIFO order holds.
A push is settled by Redis' answer only; one that Redis answered "not now" (``CLUSTERDOWN``,
``LOADING``, ``MOVED``...) is held and sent again within ``retry_window`` (held.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import ChannelFull, RedisRefused, RedisUnavailable, ReplyError
from .cluster import asking, redirection
from .held import AckedCall as _AckedCall
from .held import AckedItems as _AckedItems
from .held import Held, acked_calls, drop_if_replica, fail, merge, waits
from .held import Items as _Items
from .refusals import after_push, refusal, report
from .resp import ConnectionLost, RespLink, quiet
from .scripts import ACKED_PUSH, PUSH, RING_PUSH, Script, load, push_call
from .topology import Shard

__all__ = ["BatchWriter"]

logger = logging.getLogger(__name__)

# Lua's unpack() has a stack limit; stay far below it.
_MAX_ENTRIES_PER_CALL = 512
_REPLY_TIMEOUT = 10.0

# Pending pushes: per key (capacity, ttl_ms, [(entry bytes, future)]); acknowledged ones per
# (processing list, list, capacity, ttl_ms): [(request, state key, entry, future)].
_Pending = dict[str, tuple[int, int, _Items]]
_Call = tuple[str, int, int, _Items]
_Acked = dict[tuple[str, str, int, int], _AckedItems]
_ACKED_COMMAND = "EVALSHA (LREM, DEL, LLEN, RPUSH, PEXPIRE)"

# How the writer sends: every batch at once (pipelined); nothing while pushes answered "not now"
# wait for the batches in flight to be answered (holding); one batch at a time after a retry,
# so that a batch sent again cannot be overtaken by a later one (one at a time).
_PIPELINED, _HOLDING, _ONE_AT_A_TIME = 0, 1, 2


class BatchWriter:
    """Collects pushes for one shard and writes them in batches, pipelined on one link.

    Batches are written from a ``call_soon`` callback (no task, no extra loop turn) and settled
    from reply callbacks. Order holds because every batch goes down the same connection and
    Redis answers in order; only (re)connecting needs a task, and batches wait for it in order.
    """

    def __init__(self, shard: Shard, describe: Callable[[str], str] = str,
                 loop: asyncio.AbstractEventLoop | None = None,
                 rings: dict[str, str] | None = None) -> None:
        self.shard = shard
        #: Lists whose pushes ring a doorbell (-> channel, RING_PUSH): one loop's writers share it.
        self.rings: dict[str, str] = {} if rings is None else rings
        # Kept: get_running_loop() is a getpid() syscall on Python < 3.12.
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
        self._mode = _PIPELINED
        self._held = Held(shard.retry_window)  # pushes Redis answered "not now" (held.py)
        self._retrying: asyncio.Task[None] | None = None

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

        Resolves to the acknowledgement's answer (``scripts.OURS``: pushed; ``REAPED``,
        ``GIVEN_UP``: nothing pushed; ``FULL``: no room). Both keys on this writer's shard.
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
        while not self._quiet():
            if self._idle is None or self._idle.done():
                self._idle = self._loop.create_future()
            await asyncio.shield(self._idle)

    def _quiet(self) -> bool:
        return not (self._pending or self._acked or self._connecting is not None
                    or self._inflight or self._held or self._retrying is not None)

    def abandon(self) -> None:
        """Its event loop was closed without closing this writer: nothing runs any more."""
        quiet(self._connecting)
        quiet(self._retrying)

    def _flush(self) -> None:
        self._scheduled = False
        if not (self._pending or self._acked) or self._connecting is not None:
            return  # a connect in progress flushes when it is done
        if self._mode and (self._mode == _HOLDING or self._inflight):
            return  # sent when the answers in flight are in (_answered)
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
            load(link, (PUSH, ACKED_PUSH, RING_PUSH))
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
        fail([f for call in _calls(batch) for _, f in call[3]], error)
        fail([future for items in acked.values() for *_, future in items], error)

    def _send(self, link: RespLink, batch: _Pending, acked: _Acked) -> None:
        calls = _calls(batch)
        parts = acked_calls(acked, _MAX_ENTRIES_PER_CALL) if acked else []
        # Acknowledged pushes first: an acknowledged push precedes later events of its list.
        commands = [ACKED_PUSH.command(keys, args) for keys, args, _ in parts]
        for call in calls:
            script, keys, args = self._push_call(call)
            commands.append(script.command(keys, args))
        try:
            futures = link.call_many(commands)
        except ConnectionLost:
            # Not written at all: put it back in front of anything newer and reconnect.
            self._pending = merge(batch, self._pending)
            for group, items in self._acked.items():
                acked.setdefault(group, []).extend(items)
            self._acked = acked
            self._link = None
            self._flush()
            return
        self._inflight += len(commands)
        for acked_call, future in zip(parts, futures):
            future.add_done_callback(functools.partial(self._on_acked, link, acked_call))
        for call, future in zip(calls, futures[len(parts):]):
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
            drop_if_replica(link, error)
            if isinstance(error, ReplyError) and waits(error, self.shard.spec):
                self._mode = _HOLDING  # see _answered
                self._held.add_acked(call, error, self._loop.time())
            else:
                fail(targets, self._refusal(error, _ACKED_COMMAND, keys[1]))
        else:
            results = future.result()
            if self._mode and 1 in results[:len(targets)]:
                self._held.went_through(keys[1])
            if len(results) > len(targets):
                report(after_push(self.shard.spec, self._describe(keys[1]), results[-1]))
            for target, result in zip(targets, results):
                if not target.done():
                    target.set_result(int(result))
        self._answered()

    def _on_reply(self, link: RespLink, call: _Call, future: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        self._settled += 1
        if future.cancelled():
            reply: Any = ConnectionLost("push cancelled")
        else:
            reply = future.exception() or future.result()
        if isinstance(reply, ReplyError):
            script, *command = self._push_call(call)
            retry = script.retry(link, reply, *command)
            if retry is not None:  # after a SCRIPT FLUSH
                self._inflight += 1
                retry.add_done_callback(functools.partial(self._on_reply, link, call))
                return
            moved = redirection(reply) if self.redirect is not None else None
            if moved is not None and moved[0] == "ASK":
                self._inflight += 1
                self._loop.create_task(self._ask(call, moved[1], moved[2]))
                return
            drop_if_replica(link, reply)
            if waits(reply, self.shard.spec):
                self._mode = _HOLDING  # see _answered
                self._held.add(call, reply, self._loop.time())
                self._answered()
                return
        elif self._mode and (reply[0] if type(reply) is list else reply):  # (pushed some)
            self._held.went_through(call[0])
        self._settle(call, reply)
        self._answered()

    def _push_call(self, call: _Call) -> tuple[Script, list[Any], list[Any]]:
        key, capacity, ttl, items = call
        return push_call(key, capacity, ttl, [e for e, _ in items], self.rings.get(key))

    async def _ask(self, call: _Call, host: str, port: int) -> None:
        # Redis Cluster answered ASK (the slot is being migrated and the key is not on its
        # source any more): the push did not run, so it is sent once to the target.
        script, *parts = self._push_call(call)
        try:
            command = script.source_command(*parts)
            [reply] = await asking(self.shard.spec, host, port, [command])
            self._settle(call, reply)
        except (RedisUnavailable, ReplyError) as exc:
            self._settle(call, exc)
        finally:
            self._inflight -= 1
            self._answered()

    # Answers that said "not now" (held.py) ------------------------------------------------------
    def _answered(self) -> None:
        # While pushes are held nothing is sent, until every batch in flight is answered: only
        # then is it known which later pushes to their lists went through.
        if self._mode and not self._inflight:
            if self._held:
                if self._retrying is None:
                    self._retrying = self._loop.create_task(self._retry())
            else:  # the batch sent alone went through: pipelining again
                self._mode = _PIPELINED
                self._held.settled()
                if self._pending or self._acked:
                    self._schedule()
        self._wake_idle()

    async def _retry(self) -> None:
        try:
            await self._held.wait(self.shard.cluster)
        except BaseException as exc:
            self._retrying, self._mode = None, _PIPELINED
            self._held.fail_all(RedisUnavailable(f"send interrupted: {exc!r}"))
            self._wake_idle()
            raise
        self._retrying = None
        calls, acked = self._held.release(self._loop.time(), self._why)
        # One batch at a time from now on, until one goes through: a batch sent again is
        # never overtaken by a later one.
        self._mode = _ONE_AT_A_TIME
        route = self.redirect
        for key, capacity, ttl, items in reversed(calls):  # each goes in front: oldest last
            writer = self if route is None else route(key)
            writer.adopt(key, capacity, ttl, items, self._held.since)
        for group, acked_items in reversed(acked):
            writer = self if route is None else route(group[1])
            writer.adopt_acked(group, acked_items, self._held.since)
        self._flush()
        if not (self._pending or self._acked or self._connecting is not None):
            self._answered()  # nothing was left to send here: pipelining again

    def _why(self, error: ReplyError, key: str) -> str:
        return str(self._refusal(error, "EVALSHA (LLEN, RPUSH, PEXPIRE)", key))

    def adopt(self, key: str, capacity: int, ttl_ms: int, items: _Items,
              since: dict[asyncio.Future[Any], float]) -> None:
        """Queue pushes held by a writer (this one, or another whose slot moved here) before
        anything queued for ``key``."""
        self._held.since.update((f, since[f]) for _, f in items if f in since)
        self._pending = merge({key: (capacity, ttl_ms, items)}, self._pending)
        self._schedule()

    def adopt_acked(self, group: tuple[str, str, int, int], items: _AckedItems,
                    since: dict[asyncio.Future[Any], float]) -> None:
        self._held.since.update((f, since[f]) for *_, f in items if f in since)
        queued = self._acked.pop(group, [])
        self._acked = {group: [*items, *queued], **self._acked}
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _wake_idle(self) -> None:
        if self._idle is not None and not self._idle.done() and self._quiet():
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

    def _settle(self, call: _Call, reply: Any) -> None:
        key, capacity, _, items = call
        if isinstance(reply, BaseException):
            fail([f for _, f in items],
                  self._refusal(reply, "EVALSHA (LLEN, RPUSH, PEXPIRE)", key))
            return
        if type(reply) is list:
            report(after_push(self.shard.spec, self._describe(key), reply[1]))
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


def _calls(batch: _Pending) -> list[_Call]:
    calls = []
    for key, (capacity, ttl, items) in batch.items():
        for start in range(0, len(items), _MAX_ENTRIES_PER_CALL):
            calls.append((key, capacity, ttl, items[start : start + _MAX_ENTRIES_PER_CALL]))
    return calls
