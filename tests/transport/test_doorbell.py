"""The worker's doorbell, in memory: a ring is heard on the link to the server of its sub-queue
only (a cluster's copies are not), says which sub-queue rang, and a link made again rings
every sub-queue."""

from __future__ import annotations

import asyncio

from channels_distributed.worker.doorbell import Doorbell


class _Shard:
    pass


def test_a_ring_is_heard_where_its_sub_queue_is_and_names_it() -> None:
    async def run() -> None:
        a, b = _Shard(), _Shard()
        places = {"q:{rt:t}": a, "q:{rt:t~2.1.0}": b}
        bell = Doorbell(lambda key: places[key])  # type: ignore[arg-type,return-value]
        event = bell.event("ring:t")
        bell._heard(b, [b"message", b"ring:t", b"q:{rt:t}"])  # a copy, passed on by b
        assert not event.is_set() and bell.heard("ring:t") == set()
        bell._heard(a, [b"subscribe", b"ring:t", 2])  # a confirmation: nothing
        bell._heard(a, [b"message", b"ring:t", b"q:{rt:t}"])
        bell._heard(b, [b"message", b"ring:t", b"q:{rt:t~2.1.0}"])
        bell._heard(a, [b"message", b"ring:other", b"q:{rt:t}"])  # nobody listens to it
        assert event.is_set()
        assert bell.heard("ring:t") == {"q:{rt:t}", "q:{rt:t~2.1.0}"}
        assert bell.heard("ring:t") == set()  # each ring is told once
        bell.ring_all(frozenset({"ring:t"}))  # (a link made again)
        bell._heard(a, [b"message", b"ring:t", b"q:{rt:t}"])
        assert bell.heard("ring:t") is None  # every sub-queue, once
        assert bell.heard("ring:t") == set()

    asyncio.run(run())
