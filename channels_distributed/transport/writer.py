"""Batched writes: every push made during one event-loop turn to the same key goes out as one
capacity-checked multi-value push, and pushes to different keys as one pipelined write.

Measured in DESIGN.md: batching is what takes this design from ~8k to ~90k round trips/s.
Batches for one shard are written one after another on one link, so per-key FIFO order holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import ChannelFull, RedisUnavailable, ReplyError
from .connection import Shard
from .resp import ConnectionLost

__all__ = ["PUSH_SCRIPT", "BatchWriter", "Script"]

logger = logging.getLogger("channels_distributed.transport")

# KEYS[1] = list; ARGV = capacity, ttl_ms, entries... Pushes as many entries as fit under the
# capacity (in order, so FIFO holds) and returns how many it pushed.
PUSH_SCRIPT = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
local n = #ARGV - 2
if room < n then n = room end
if n <= 0 then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3, n + 2))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
"""

# Lua's unpack() has a stack limit; stay far below it.
_MAX_ENTRIES_PER_CALL = 512
_REPLY_TIMEOUT = 10.0


class Script:
    """A Lua script run by EVALSHA; falls back to EVAL once when the server lost it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    def command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def fallback(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        return ("EVAL", self.source, len(keys), *keys, *args)


_PUSH = Script(PUSH_SCRIPT)

# A pending push: (entry bytes, future). Per key we also keep (capacity, ttl_ms).
_Pending = dict[str, tuple[int, int, list[tuple[bytes, "asyncio.Future[None]"]]]]


class BatchWriter:
    """Collects pushes for one shard and writes them in batches."""

    def __init__(self, shard: Shard, describe: Callable[[str], str] = str) -> None:
        self.shard = shard
        self._describe = describe
        self._pending: _Pending = {}
        self._flushing: asyncio.Task[None] | None = None

    def push(self, key: str, entry: bytes, capacity: int, ttl_ms: int) -> asyncio.Future[None]:
        """Queue ``entry`` for ``key``; the future fails with ChannelFull if it did not fit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slot = self._pending.get(key)
        if slot is None:
            self._pending[key] = (capacity, ttl_ms, [(entry, future)])
        else:
            slot[2].append((entry, future))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush_loop())
        return future

    async def wait_idle(self) -> None:
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush_loop(self) -> None:
        try:
            # Yield once so every push made in this loop turn joins the first batch.
            await asyncio.sleep(0)
            while self._pending:
                batch, self._pending = self._pending, {}
                await self._write(batch)
        finally:
            self._flushing = None

    async def _write(self, batch: _Pending) -> None:
        calls: list[tuple[str, int, int, list[tuple[bytes, asyncio.Future[None]]]]] = []
        for key, (capacity, ttl, items) in batch.items():
            for start in range(0, len(items), _MAX_ENTRIES_PER_CALL):
                calls.append((key, capacity, ttl, items[start : start + _MAX_ENTRIES_PER_CALL]))
        try:
            link = await self.shard.link()
        except RedisUnavailable as exc:
            _fail_all(calls, exc)  # nothing was sent: a clear error, never a duplicate
            return
        except BaseException as exc:
            _fail_all(calls, RedisUnavailable(f"send interrupted: {exc!r}"))
            raise
        commands = [_PUSH.command([key], [cap, ttl, *(e for e, _ in items)])
                    for key, cap, ttl, items in calls]
        try:
            replies = await _gather_replies(link, link.call_many(commands))
        except ConnectionLost as exc:
            _fail_all(calls, exc)
            return
        retry = [(i, call) for i, (call, reply) in enumerate(zip(calls, replies))
                 if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")]
        if retry:
            fallback = [_PUSH.fallback([k], [c, t, *(e for e, _ in it)])
                        for _, (k, c, t, it) in retry]
            try:
                again = await _gather_replies(link, link.call_many(fallback))
            except ConnectionLost as exc:
                _fail_all([call for _, call in retry], exc)
                again = [exc] * len(retry)
            for (index, _), reply in zip(retry, again):
                replies[index] = reply
        for call, reply in zip(calls, replies):
            self._settle(call, reply)

    def _settle(self, call: tuple[str, int, int, list[tuple[bytes, asyncio.Future[None]]]],
                reply: Any) -> None:
        key, capacity, _, items = call
        if isinstance(reply, BaseException):
            error = reply if isinstance(reply, RedisUnavailable) else RedisUnavailable(
                f"Redis refused a push to {self._describe(key)}: {reply}")
            _fail([f for _, f in items], error)
            return
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


async def _gather_replies(link: Any, futures: list[asyncio.Future[Any]]) -> list[Any]:
    """All replies (errors as values). A server that stops answering gets its link dropped."""
    _, pending = await asyncio.wait(futures, timeout=_REPLY_TIMEOUT)
    if pending:
        link.close()
        raise ConnectionLost(f"Redis did not answer within {_REPLY_TIMEOUT:g} s")
    return [f.exception() if f.exception() is not None else f.result() for f in futures]


def _fail(futures: list[asyncio.Future[None]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _fail_all(calls: list[Any], error: BaseException) -> None:
    for call in calls:
        _fail([f for _, f in call[3]], error)
