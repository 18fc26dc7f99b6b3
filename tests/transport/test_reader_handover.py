"""How a reader hands entries to waiting receives and buffers the rest, in memory.

The reader's pop loop is kept from running (a shard whose blocking link never comes): the tests
feed ``deliver()`` entries as the loop would, and take them as ``receive()`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.protocol.codec import encode_entry
from channels_distributed.transport.reader import Reader

FAR = 2**62  # an expiry no test reaches


class _NoLink:
    """A shard whose blocking link never comes: nothing is popped, the tests deliver."""

    async def blocking_link(self) -> Any:
        await asyncio.Event().wait()

    def release_blocking(self, link: Any) -> None:
        pass


def _reader(capacity: int = 100, least: int = 100, capacities: dict[str, int] | None = None
            ) -> Reader:
    caps = capacities or {}
    return Reader(_NoLink(), "k", batch=512,  # type: ignore[arg-type]
                  capacity_of=lambda channel: caps.get(channel, capacity),
                  clock_ms=lambda: 1000, least_capacity=least)


def _group(channels: list[str], n: int) -> bytes:
    return encode_entry(channels, FAR, b"m%d" % n)


async def test_each_member_waiting_gets_a_group_entry_and_the_others_buffer_it() -> None:
    reader = _reader()
    a, b = reader.take("a"), reader.take("b")
    assert isinstance(a, asyncio.Future) and isinstance(b, asyncio.Future)
    reader.deliver([_group(["a", "b", "c"], 1), _group(["a", "b", "c"], 2)])
    assert a.result() == b.result() == (FAR, b"m1")
    assert [reader.take(c) for c in ("a", "b", "c", "c")] == [
        (FAR, b"m2"), (FAR, b"m2"), (FAR, b"m1"), (FAR, b"m2")]
    assert reader._waiting == 0 and not reader._waiters and not reader._buffers
    await reader.close()


async def test_several_receives_on_one_channel_are_served_in_turn() -> None:
    reader = _reader()
    first, second, third = reader.take("a"), reader.take("a"), reader.take("a")
    assert isinstance(second, asyncio.Future)
    second.cancel()
    reader.withdraw("a", second, asyncio.CancelledError())  # as receive() does when cancelled
    reader.deliver([_group(["a", "b"], 1)])
    reader.deliver([encode_entry("a", FAR, b"m2")])
    assert isinstance(first, asyncio.Future) and first.result() == (FAR, b"m1")
    assert isinstance(third, asyncio.Future) and third.result() == (FAR, b"m2")
    assert reader._waiting == 0 and not reader._waiters and not reader._queued
    await reader.close()


async def test_a_waiter_cancelled_before_its_withdraw_is_passed_over() -> None:
    reader = _reader()
    gone = reader.take("a")
    assert isinstance(gone, asyncio.Future)
    gone.cancel()  # its task has not run its withdraw() yet
    reader.deliver([_group(["a", "b"], 1)])
    reader.withdraw("a", gone, asyncio.CancelledError())
    assert reader.take("a") == (FAR, b"m1") and reader._waiting == 0
    await reader.close()


async def test_buffered_group_entries_keep_each_members_capacity() -> None:
    # "small" may hold 2, the others 4: below 2 (the least) no capacity is asked for.
    reader = _reader(capacity=4, least=2, capacities={"small": 2})
    reader.deliver([_group(["small", "big"], n) for n in range(6)])
    assert [reader.take("small") for _ in range(2)] == [(FAR, b"m4"), (FAR, b"m5")]
    assert [reader.take("big") for _ in range(4)] == [(FAR, b"m%d" % n) for n in range(2, 6)]
    assert not reader._buffers and not reader._full
    await reader.close()


async def test_a_full_member_stops_the_pops_until_it_drains() -> None:
    reader = _reader(capacity=3, least=3)
    reader.deliver([_group(["a", "b"], n) for n in range(3)])
    assert reader._full == {"a", "b"}
    reader.take("a")
    assert reader._full == {"b"}
    await reader.close()


async def test_close_cancels_every_waiter() -> None:
    reader = _reader()
    waiting = [reader.take("a"), reader.take("a"), reader.take("b")]
    await reader.close()
    assert all(isinstance(f, asyncio.Future) and f.cancelled() for f in waiting)
    assert not reader._waiters and not reader._queued
