"""``LegacyAdapter``: the ASGI 3 application that runs a Channels 1 style ``consumer(message)``.

HTTP: the whole request body is read, the consumer gets one ASGI 1 ``http.request`` message, and
its replies (``status``, ``headers``, ``content``, ``more_content``) become the response; with no
answer within ``timeout`` the client gets 503. WebSocket: ``websocket.connect``,
``websocket.receive`` and ``websocket.disconnect`` messages, answered with ``accept``, ``text``,
``bytes`` and ``close``. Lifespan: completed at once (a legacy consumer has no hooks).
``channels_distributed.interfaces.adapt`` chooses this adapter for a one-parameter callable.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Callable
from typing import Any

from channels_distributed.conf.checks import positive
from channels_distributed.exceptions import ProtocolError
from channels_distributed.legacy import conversion
from channels_distributed.legacy.message import Message
from channels_distributed.legacy.replies import LocalReplyChannel, LocalReplyLayer
from channels_distributed.responses import deny_websocket, send_plain
from channels_distributed.typing import Receive, Scope, Send

__all__ = ["DEFAULT_LEGACY_TIMEOUT", "LegacyAdapter", "app_name"]

_NO_ANSWER = b"Service Unavailable: the consumer did not answer in time\n"
logger = logging.getLogger(__name__)


DEFAULT_LEGACY_TIMEOUT = 60.0
_ids = itertools.count(1)


def app_name(app: Any) -> str:
    """The name logs and errors give an application or consumer: its qualified name."""
    return getattr(app, "__qualname__", None) or type(app).__qualname__


class LegacyAdapter:
    """ASGI 3 application running a Channels 1 style ``consumer(message)``."""

    def __init__(self, consumer: Callable[[Message], Any], timeout: float = DEFAULT_LEGACY_TIMEOUT):
        positive("legacy_timeout", timeout, "set a positive number of seconds")
        self.consumer = consumer
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LegacyAdapter({app_name(self.consumer)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan_noop(receive, send)
        else:
            raise ProtocolError(f"a legacy consumer cannot serve scope type {kind!r}")

    async def call(self, message: Message, layer: LocalReplyLayer) -> None:
        """Run the consumer on ``message``; sync consumers run here, on the loop.

        Replies sent during the synchronous part are written right after it, in order, without a
        task; an async consumer may await its sends, so those are written by a drain task.
        """
        layer.inline = True
        try:
            result = self.consumer(message)
        finally:
            layer.inline = False
        await layer.drain()
        if result is not None and inspect.isawaitable(result):
            await result

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        response = conversion.LegacyHttpResponse()
        layer = LocalReplyLayer(asyncio.get_running_loop(), send, response.feed)
        name = LocalReplyChannel(f"http.response!{next(_ids)}", layer)
        content = conversion.http_request_message(scope, body, name)
        try:
            await self.call(Message(content, channel="http.request", channel_layer=layer), layer)
            while not response.done:
                if not await layer.wait_progress(self.timeout):
                    await self._timed_out(response, send)
                    return
        finally:
            layer.finish(app_name(self.consumer))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        replies = conversion.LegacyWebSocketReplies()
        layer = LocalReplyLayer(asyncio.get_running_loop(), send, replies.feed)
        try:
            await self._websocket_exchange(scope, receive, send, layer, replies)
        finally:
            layer.finish(app_name(self.consumer))

    async def _websocket_exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        layer: LocalReplyLayer,
        replies: conversion.LegacyWebSocketReplies,
    ) -> None:
        name = LocalReplyChannel(f"websocket.send!{next(_ids)}", layer)
        connect = conversion.websocket_connect_message(scope, name)
        await self._deliver(layer, Message(connect, "websocket.connect", layer))
        while replies.state == "connecting":
            if not await layer.wait_progress(self.timeout):
                await _reject_websocket(scope, send)
                return
        order, accepted = 1, replies.state != "closed"
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                if accepted:
                    code = event.get("code", 1005)
                    gone = conversion.websocket_disconnect_message(scope, code, name, order)
                    await self._deliver(layer, Message(gone, "websocket.disconnect", layer))
                return
            if event["type"] == "websocket.receive":
                data = conversion.websocket_receive_message(scope, event, name, order)
                await self._deliver(layer, Message(data, "websocket.receive", layer))
                order += 1

    async def _deliver(self, layer: LocalReplyLayer, message: Message) -> None:
        await self.call(message, layer)
        await layer.drain()

    async def _timed_out(self, response: conversion.LegacyHttpResponse, send: Send) -> None:
        if response.started:
            raise TimeoutError(
                f"legacy consumer {app_name(self.consumer)} stopped streaming for {self.timeout} s "
                "(more_content=True without a further message)"
            )
        logger.warning(
            "legacy consumer %s sent no response within %s s; answering 503",
            app_name(self.consumer),
            self.timeout,
        )
        await send_plain(send, 503, _NO_ANSWER, retry_after=1)


async def _reject_websocket(scope: Scope, send: Send) -> None:
    logger.warning("legacy consumer sent neither accept nor close within the timeout; rejecting")
    await deny_websocket(scope, send, 503, _NO_ANSWER, 1013, retry_after=1)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise ProtocolError("the client disconnected before its request body was complete")
        chunks.append(event.get("body", b""))
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    # A legacy consumer has no lifespan hooks: complete both phases at once.
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
