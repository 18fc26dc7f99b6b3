"""The pause between attempts to reach Redis again: doubling from ``start`` up to ``limit``.

Every loop that must outlast an outage (a connection being made, a reader's pop loop, presence,
a worker's take loop, the sentinels' subscription, the process inbox after a refusal) waits with
one of these: short at first, so a blip costs little, then no more often than ``limit``.
"""

from __future__ import annotations

import asyncio

__all__ = ["Backoff"]


class Backoff:
    """Doubling pauses: ``start``, twice that, ... at most ``limit``; ``reset`` after a success."""

    __slots__ = ("delay", "limit", "start")

    def __init__(self, start: float = 0.02, limit: float = 0.5) -> None:
        self.start = start
        self.limit = limit
        self.delay = start

    def reset(self) -> None:
        self.delay = self.start

    def next(self) -> float:
        """The pause to take now; the one after it is twice as long (up to ``limit``)."""
        delay = self.delay
        self.delay = min(delay * 2, self.limit)
        return delay

    async def pause(self) -> None:
        await asyncio.sleep(self.next())
