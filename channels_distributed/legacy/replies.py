"""The in-process "channel layer" behind an adapted legacy consumer's ``reply_channel``.

A consumer run by ``LegacyAdapter`` answers with ``message['reply_channel'].send({...})``. Nothing
goes through Redis: ``LocalReplyLayer`` converts each ASGI 1 reply into ASGI 3 events at once
(``conversion.py``'s state machines, so a bad reply raises in the consumer) and writes them to the
connection's ASGI ``send`` in call order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from channels_distributed.exceptions import ProtocolError
from channels_distributed.legacy.message import ReplyChannel
from channels_distributed.typing import Send

__all__ = ["LocalReplyChannel", "LocalReplyLayer"]

logger = logging.getLogger(__name__)


class LocalReplyLayer:
    """The in-process "channel layer" behind a legacy message's ``reply_channel``.

    ``send_soon`` converts an ASGI 1 reply into ASGI 3 events at once (so errors surface in the
    caller) and queues them; they are written by ``drain``, in call order.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send, convert: Any) -> None:
        self._loop = loop
        self._send = send
        self._convert = convert
        self._pending: deque[tuple[list[dict[str, Any]], asyncio.Future[None]]] = deque()
        self._draining = False
        self._progress: asyncio.Future[None] | None = None
        self.error: ProtocolError | None = None
        self.inline = False  # True while the adapter itself will drain: no task needed
        self._over: str | None = None  # the consumer's name, once its exchange is over
        self._warned = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def send_soon(self, channel: str, message: dict[str, Any]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        if self._over is not None:
            self._drop_late()
            future.set_result(None)
            return future
        try:
            events = self._convert(message)
        except ProtocolError as exc:
            future.set_exception(exc)
            self.error = exc
            self._wake(exc)
            return future
        self._pending.append((events, future))
        if not self.inline and not self._draining:
            # What it raises (ClientGone once the client left) reaches the adapter through
            # _wake: the task's copy is retrieved here, not logged as never retrieved.
            task = self._loop.create_task(self.drain())
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return future

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self.send_soon(channel, message)

    def finish(self, consumer: str) -> None:
        """The exchange is over (answered, timed out, or the client left): from now on replies
        are dropped, as sends to a reply channel nobody reads were in Channels 1."""
        self._over = consumer
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_result(None)

    def _drop_late(self) -> None:
        # Once per exchange: a consumer streaming into a closed response would flood the log.
        if not self._warned:
            self._warned = True
            logger.warning(
                "legacy consumer %s replied after its response was over; the reply was dropped",
                self._over,
            )

    async def drain(self) -> None:
        if self.error is not None:
            raise self.error  # an invalid reply: the server answers 500 (or closes)
        if self._draining:
            return
        self._draining = True
        try:
            while self._pending:
                events, future = self._pending.popleft()
                for event in events:
                    await self._send(event)
                if not future.done():
                    future.set_result(None)
                self._wake(None)
        except BaseException as exc:
            self._wake(exc)
            raise
        finally:
            self._draining = False

    def _wake(self, error: BaseException | None) -> None:
        waiter, self._progress = self._progress, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def wait_progress(self, timeout: float) -> bool:
        """Wait until something more was sent; False on timeout."""
        if self._pending and not self._draining:
            await self.drain()
            return True
        self._progress = self._loop.create_future()
        try:
            await asyncio.wait_for(self._progress, timeout)
        except asyncio.TimeoutError:
            return False
        return True


class LocalReplyChannel(ReplyChannel):
    """A reply channel bound to a ``LocalReplyLayer``: schedules without protocol checks."""

    layer: LocalReplyLayer

    def __new__(cls, name: str, layer: LocalReplyLayer) -> LocalReplyChannel:
        # Made on the loop for each request: take the layer's loop rather than look it up.
        return super().__new__(cls, name, layer, layer.loop)  # type: ignore[return-value]

    def _schedule(self, content: dict[str, Any]) -> asyncio.Future[None]:
        return self.layer.send_soon(str(self), content)
