"""The legacy (Channels 1 / ASGI 1) message contract: ``Message`` and ``ReplyChannel``.

A consumer written for Channels 1 receives one ``message`` and answers with
``message['reply_channel'].send({...})`` from plain synchronous code, with no ``await``.
That call must act at once: it is scheduled on the layer's loop immediately and never relies on
the caller awaiting the result (it may, though: the return value is awaitable).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Generator, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["Message", "ReplyChannel", "SupportsSend", "SupportsSendSoon"]

logger = logging.getLogger(__name__)


@runtime_checkable
class SupportsSend(Protocol):
    """What a reply channel needs from a channel layer: a loop and an async ``send``."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def send(self, channel: str, message: dict[str, Any]) -> None: ...


@runtime_checkable
class SupportsSendSoon(SupportsSend, Protocol):
    """A layer that can enqueue a send synchronously, keeping the order of calls exactly."""

    def send_soon(self, channel: str, message: dict[str, Any]) -> asyncio.Future[None]: ...


def _log_failure(future: asyncio.Future[None]) -> None:
    # Fire-and-forget sends must not end as "exception was never retrieved".
    if not future.cancelled() and future.exception() is not None:
        logger.error("reply_channel.send failed", exc_info=future.exception())


class ReplyChannel(str):
    """A channel name that can send. It is a ``str``, so it works anywhere a name does."""

    layer: SupportsSend
    _loop: asyncio.AbstractEventLoop | None

    def __new__(cls, name: str, layer: SupportsSend,
                loop: asyncio.AbstractEventLoop | None = None) -> ReplyChannel:
        instance = super().__new__(cls, name)
        instance.layer = layer
        # Remember the loop it was made in (``loop``, when the caller knows it), so a sync
        # consumer running in a worker thread can still hand its send over to that loop.
        instance._loop = loop if loop is not None else _running_loop()
        return instance

    @property
    def name(self) -> str:
        return str(self)

    def send(self, message: Mapping[str, Any]) -> Awaitable[Any]:
        """Send ``message`` now. Callable from sync code, from the loop, or from another thread."""
        if type(message) is not dict and not isinstance(message, Mapping):
            raise TypeError(
                f"reply_channel.send() takes a dict, got {type(message).__name__}; "
                "pass the response as a dict such as {'status': 200, 'content': b'...'}"
            )
        loop = self._loop or self.layer.loop
        content = dict(message)
        if _running_loop() is loop:
            future = self._schedule(content)
            future.add_done_callback(_log_failure)
            return future
        # From another thread (a sync consumer run in an executor): hand over to the loop.
        return _threadsafe_send(loop, self._schedule, content)

    def _schedule(self, content: dict[str, Any]) -> asyncio.Future[None]:
        layer = self.layer
        # A plain attribute lookup: isinstance() against a runtime-checkable Protocol costs
        # more than the send itself on the legacy hot path.
        send_soon = getattr(layer, "send_soon", None)
        if send_soon is not None:
            return send_soon(str(self), content)  # type: ignore[no-any-return]
        return asyncio.ensure_future(layer.send(str(self), content))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        # Pickles and copies as its plain name: the layer is process-local.
        return (str, (str(self),))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _ThreadSendResult:
    """Awaitable (from the loop) and waitable (``.result()``) handle of a cross-thread send."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._future: asyncio.Future[None] | None = None

    def _attach(self, future: asyncio.Future[None]) -> None:
        self._future = future
        future.add_done_callback(self._finish)

    def _finish(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self._error = asyncio.CancelledError()
        elif future.exception() is not None:
            self._error = future.exception()
            logger.error("reply_channel.send failed", exc_info=self._error)
        self._done.set()

    def result(self, timeout: float | None = None) -> None:
        if not self._done.wait(timeout):
            raise TimeoutError("reply_channel.send did not complete in time")
        if self._error is not None:
            raise self._error

    def __await__(self) -> Generator[Any, None, None]:
        while self._future is None:
            yield from asyncio.sleep(0).__await__()
        yield from asyncio.shield(self._future).__await__()


def _threadsafe_send(
    loop: asyncio.AbstractEventLoop,
    schedule: Any,
    content: dict[str, Any],
) -> _ThreadSendResult:
    handle = _ThreadSendResult(loop)
    loop.call_soon_threadsafe(lambda: handle._attach(schedule(content)))
    return handle


class Message(dict[str, Any]):
    """A received message: dict-like (``message["path"]``) and attribute-like (``message.path``).

    ``channel``, ``channel_layer`` and ``reply_channel`` are available both ways, as in Channels 1.
    ``content`` is the plain message dict without those extras.
    """

    def __init__(
        self,
        content: Mapping[str, Any],
        channel: str | None = None,
        channel_layer: SupportsSend | None = None,
    ) -> None:
        super().__init__(content)
        reply = content.get("reply_channel")
        if isinstance(reply, str) and not isinstance(reply, ReplyChannel) and channel_layer:
            super().__setitem__("reply_channel", ReplyChannel(reply, channel_layer))
        self._channel = channel
        self._channel_layer = channel_layer

    @property
    def content(self) -> dict[str, Any]:
        return {k: (str(v) if k == "reply_channel" and v is not None else v)
                for k, v in self.items()}

    @property
    def channel(self) -> str | None:
        return self._channel

    @property
    def channel_layer(self) -> SupportsSend | None:
        return self._channel_layer

    @property
    def reply_channel(self) -> ReplyChannel | None:
        value = self.get("reply_channel")
        return value if isinstance(value, ReplyChannel) else None

    def __missing__(self, key: str) -> Any:
        if key == "channel_layer":
            return self._channel_layer
        if key == "channel":
            return self._channel
        raise KeyError(key)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"message has no key or attribute {name!r}; keys: {sorted(self)}"
            ) from None

    def __repr__(self) -> str:
        return f"Message(channel={self._channel!r}, content={dict(self)!r})"
