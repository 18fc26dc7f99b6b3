"""Flow control of one connection, both ways.

Reading is paused for independent reasons (a pipelined request waits its turn, the application
has not read the buffered body yet); it resumes only when no reason is left. Writing follows the
transport's ``pause_writing``/``resume_writing``: ``drain()`` waits while the client is slow.
"""

from __future__ import annotations

import asyncio

__all__ = ["BODY_BUFFERED", "PIPELINED", "FlowControl"]

PIPELINED = 1
BODY_BUFFERED = 2


class FlowControl:
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._read_pauses = 0
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None

    def pause_reading(self, reason: int) -> None:
        if not self._read_pauses:
            self.transport.pause_reading()
        self._read_pauses |= reason

    @property
    def reading_paused(self) -> bool:
        return bool(self._read_pauses)

    def resume_reading(self, reason: int) -> None:
        if self._read_pauses & reason:
            self._read_pauses &= ~reason
            if not self._read_pauses and not self.transport.is_closing():
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake()

    def wake(self) -> None:
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its low-water mark (or it closed)."""
        if not self.write_paused or self.transport.is_closing():
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain)
