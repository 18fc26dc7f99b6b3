"""Presence (transport/liveness.py): a process stays present until it stops, and then it stops."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels_distributed.conf import parse_hosts
from channels_distributed.forwarding.hub import Hub
from channels_distributed.protocol.forwarding import WORKER
from channels_distributed.transport.liveness import Presence


async def _stop_while_refreshing(url: str) -> None:
    hub = Hub(parse_hosts([url]), "liveness", side=WORKER, retry_window=1.0)
    refreshing = asyncio.Event()

    async def refresh() -> None:
        refreshing.set()
        # Swallowed, as asyncio.wait_for does on Python < 3.12 when a cancel arrives just as
        # what it waits for completes (a Redis reply, in Node's upkeep or the lease's SET).
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.5)

    presence = Presence(hub, refresh=refresh)
    presence.start()
    await asyncio.wait_for(refreshing.wait(), 10)
    assert presence.present.is_set() is False  # the first refresh is under way
    await asyncio.wait_for(presence.stop(), 5)  # waited forever: the session went on refreshing
    assert not presence.present.is_set()
    await hub.close()


def test_presence_stops_even_when_its_cancel_is_swallowed(redis_single: Any) -> None:
    asyncio.run(_stop_while_refreshing(redis_single.servers[0].url))


async def _card_that_fails(url: str) -> None:
    hub = Hub(parse_hosts([url]), "cardfail", side=WORKER, retry_window=2.0)
    calls = []

    def card() -> dict[str, object]:
        calls.append(1)
        raise RuntimeError("a bug in the figures")

    presence = Presence(hub, card=card)
    presence.start()
    await asyncio.wait_for(presence.present.wait(), 10)  # the lease is held all the same
    while len(calls) < 2:  # and the next refresh still comes
        await asyncio.sleep(0.05)
    assert presence.present.is_set()
    await asyncio.wait_for(presence.stop(), 5)
    await hub.close()


def test_a_card_that_cannot_be_made_never_ends_the_presence(redis_single: Any) -> None:
    asyncio.run(asyncio.wait_for(_card_that_fails(redis_single.servers[0].url), 20))
