"""Letting woken work write first.

A blocking pop (``BLMPOP``, ``BLMOVE``) is re-sent right after its reply was handed over. Sent
at once, its write goes out before whatever the woken receivers answer: a response made as soon
as a request arrives takes three loop turns to reach the socket (the application's step, the
peer's flush, the writer's flush). On a VM, a write that wakes Redis costs tens of microseconds,
and on the request's critical path that is what the client waits for. Yielding those turns first
puts the answer ahead of the next pop; under load the pop then also finds more waiting.
"""

from __future__ import annotations

import asyncio

__all__ = ["TURNS", "let_woken_write"]

TURNS = 3  # the application's step, then Peer.flush, then BatchWriter._flush


async def let_woken_write(turns: int = TURNS) -> None:
    """Yield ``turns`` loop turns, so callbacks scheduled now (and those they schedule) run."""
    for _ in range(turns):
        await asyncio.sleep(0)
