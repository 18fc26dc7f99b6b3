"""Pushes Redis answered "not now": held by the batched writer, then sent again or failed;
and the writer's helpers for calls off its hot path.

Redis answers some commands with an error that says the command did not run and that waiting
fixes it: ``CLUSTERDOWN`` (a primary failed and no replica has taken its slots yet: every node
refuses everything), ``TRYAGAIN``, ``MOVED`` after a failover or a slot change, ``LOADING``,
``BUSY``, ``MASTERDOWN``, ``OOM``, too many clients. ``refusals.refusal`` tells them from the
errors that waiting will not fix. Sending such a push again cannot deliver it twice; what it can
do is reorder its list, if a push sent after it went through meanwhile. So the writer holds
them here until every batch in flight is answered, then sends them again in their order; a
held push that a later push to its list overtook is failed instead, and so is one still
refused ``retry_window`` seconds after its first such answer.

An error from inside a script is not held: the script may have written before it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ..conf.hosts import HostSpec
from ..exceptions import RedisUnavailable, ReplyError
from .backoff import Backoff
from .cluster import ClusterMap, redirection
from .refusals import refusal
from .resp import RespLink

__all__ = ["AckedCall", "AckedGroup", "AckedItems", "Call", "Held", "Items", "Pending",
           "acked_calls", "drop_if_replica", "fail", "merge", "waits"]

Items = list[tuple[bytes, "asyncio.Future[None]"]]
#: One PUSH script call: (list, capacity, ttl_ms, [(entry, future)]).
Call = tuple[str, int, int, Items]
#: One ACKED_PUSH script call: (keys, args, futures); see acked_calls below.
AckedCall = tuple[list[Any], list[Any], list["asyncio.Future[Any]"]]
#: Acknowledged pushes as the writer queues them: (processing list, list, capacity, ttl_ms)
#: and [(taken request, state key, entry, future)].
AckedItems = list[tuple[bytes, str, bytes, "asyncio.Future[Any]"]]
AckedGroup = tuple[tuple[str, str, int, int], AckedItems]


def waits(error: ReplyError, spec: HostSpec) -> bool:
    """Whether ``error``, Redis' answer to a push, says that it did not run and that waiting
    fixes it."""
    text = str(error)
    if "@user_script" in text:
        return False  # raised inside the script, which may have written before
    return isinstance(refusal(error, "", None, spec), RedisUnavailable)


class Held:
    """The pushes of one writer that wait to be sent again, in the order they were sent."""

    def __init__(self, retry_window: float) -> None:
        self.retry_window = retry_window
        self.calls: list[tuple[Call, ReplyError]] = []
        self.acked: list[tuple[AckedCall, ReplyError]] = []
        #: When each held push was first answered "not now" (loop time).
        self.since: dict[asyncio.Future[Any], float] = {}
        self._overtaken: set[str] = set()
        # Redis answered: it is up, and asked again soon once it is fine.
        self._backoff = Backoff(0.01, 0.1)

    def __bool__(self) -> bool:
        return bool(self.calls or self.acked)

    def add(self, call: Call, error: ReplyError, now: float) -> None:
        self.calls.append((call, error))
        for _, future in call[3]:
            self.since.setdefault(future, now)

    def add_acked(self, call: AckedCall, error: ReplyError, now: float) -> None:
        self.acked.append((call, error))
        for future in call[2]:
            self.since.setdefault(future, now)

    def went_through(self, key: str) -> None:
        """A push to ``key`` sent after the held ones went through."""
        if (any(call[0] == key for call, _ in self.calls)
                or any(call[0][1] == key for call, _ in self.acked)):
            self._overtaken.add(key)

    async def wait(self, cluster: ClusterMap | None) -> None:
        """Before they are sent again: a pause (doubling while it lasts; none when all were
        answered MOVED, as the slot map's refresh paces those), and a fresh slot map."""
        errors = [error for _, error in self.calls] + [error for _, error in self.acked]
        if not all(redirection(error) for error in errors):
            await asyncio.sleep(self._backoff.next())
        if cluster is not None:
            with contextlib.suppress(RedisUnavailable):  # (a reconnect asks again)
                await cluster.refresh()

    def settled(self) -> None:
        """A batch sent alone went through: the next episode starts afresh."""
        self._backoff.reset()
        self._overtaken.clear()
        self.since = {future: t for future, t in self.since.items() if not future.done()}

    def release(self, now: float, why: Callable[[ReplyError, str], str]
                ) -> tuple[list[Call], list[AckedGroup]]:
        """The held pushes to send again, oldest first; the others are failed. ``why(error,
        key)`` words an answer for the exception."""
        calls, self.calls = self.calls, []
        acked, self.acked = self.acked, []
        overtaken, self._overtaken = self._overtaken, set()
        again: list[Call] = []
        for (key, capacity, ttl, items), error in calls:
            live = self._live(key, [f for _, f in items], error, now, overtaken, why)
            kept = [(entry, future) for entry, future in items if future in live]
            if kept:
                again.append((key, capacity, ttl, kept))
        acked_again: list[AckedGroup] = []
        for (keys, args, targets), error in acked:
            live = self._live(keys[1], targets, error, now, overtaken, why)
            group = (str(keys[0]), str(keys[1]), int(args[0]), int(args[1]))
            taken = [(args[2 + 2 * i], keys[2 + i], args[3 + 2 * i], future)
                     for i, future in enumerate(targets) if future in live]
            if taken:
                acked_again.append((group, taken))
        return again, acked_again

    def _live(self, key: str, futures: list[asyncio.Future[Any]], error: ReplyError,
              now: float, overtaken: set[str], why: Callable[[ReplyError, str], str]
              ) -> set[asyncio.Future[Any]]:
        waiting = [future for future in futures if not future.done()]
        if key in overtaken:
            fail(waiting, RedisUnavailable(
                f"{why(error, key)}; a later push to the same list went through meanwhile, "
                "so this one is not sent again (it would arrive out of order)"))
            return set()
        late = [f for f in waiting if now - self.since.get(f, now) >= self.retry_window]
        fail(late, RedisUnavailable(
            f"{why(error, key)}; still so {self.retry_window:g} s later (the channel layer's "
            "retry_window; the distributor's and workers' redis_timeout)"))
        return set(waiting) - set(late)

    def fail_all(self, error: BaseException) -> None:
        calls, self.calls = self.calls, []
        acked, self.acked = self.acked, []
        fail([future for call, _ in calls for _, future in call[3]], error)
        fail([future for call, _ in acked for future in call[2]], error)


def fail(futures: list[asyncio.Future[Any]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


Pending = dict[str, tuple[int, int, Items]]


def merge(older: Pending, newer: Pending) -> Pending:
    """Queued pushes ``older`` and then ``newer``, per list."""
    merged: Pending = {key: (cap, ttl, list(items)) for key, (cap, ttl, items) in older.items()}
    for key, (cap, ttl, items) in newer.items():
        if key in merged:
            merged[key][2].extend(items)
        else:
            merged[key] = (cap, ttl, list(items))
    return merged


def acked_calls(acked: dict[tuple[str, str, int, int], AckedItems],
                most: int) -> list[AckedCall]:
    """The script calls of queued acknowledged pushes, at most ``most`` pushes each."""
    calls: list[AckedCall] = []
    for (ack_key, key, capacity, ttl), items in acked.items():
        for start in range(0, len(items), most):
            part = items[start : start + most]
            args: list[Any] = [capacity, ttl]
            for request, _, entry, _ in part:
                args += (request, entry)
            keys = [ack_key, key, *(state for _, state, _, _ in part)]
            calls.append((keys, args, [future for *_, future in part]))
    return calls


def drop_if_replica(link: RespLink, error: Any) -> None:
    # READONLY: this connection reached a replica (a Sentinel failover under way). Dropped, so
    # that the next batch connects to the master again instead of failing here until then.
    if isinstance(error, ReplyError) and str(error).startswith("READONLY"):
        link.close()
