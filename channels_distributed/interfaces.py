"""Detect and adapt applications to ASGI 3: ASGI 3, ASGI 2 class-style, and legacy consumers.

``adapt(app)`` returns an ASGI 3 callable for any of:

* ASGI 3: ``async def app(scope, receive, send)`` (Django's ``get_asgi_application()``, Starlette,
  Channels' ``ProtocolTypeRouter``, the distributor);
* ASGI 2: ``cls(scope)`` returning an instance awaited as ``instance(receive, send)``;
* legacy (Channels 1 / ASGI 1): ``consumer(message)``, sync or async, answering through
  ``message['reply_channel'].send({...})`` -- at once, or later from a task it scheduled on
  ``message['channel_layer'].loop``.

Auto-detection looks at the callable's signature: three positional parameters mean ASGI 3; a class,
or a one-parameter callable whose parameter is named ``scope``, means ASGI 2; any other
one-parameter callable is a legacy consumer. ``interface=`` overrides it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from channels_distributed.conf.checks import choice, positive
from channels_distributed.conf.node import INTERFACES
from channels_distributed.exceptions import ConfigurationError, ProtocolError
from channels_distributed.message import Message, ReplyChannel
from channels_distributed.protocol import legacy
from channels_distributed.typing import ASGIApp, Receive, Scope, Send

__all__ = ["INTERFACES", "LegacyAdapter", "adapt", "detect_interface"]

logger = logging.getLogger(__name__)


DEFAULT_LEGACY_TIMEOUT = 60.0
_ids = itertools.count(1)


def _positional(fn: Any) -> tuple[list[inspect.Parameter], bool]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in signature.parameters.values() if p.kind in kinds]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values())
    return params, varargs


def detect_interface(app: Any) -> str:
    """Return ``"asgi3"``, ``"asgi2"`` or ``"legacy"`` for ``app``, judged by its signature."""
    if inspect.isclass(app):
        return "asgi2"
    if not callable(app):
        raise ConfigurationError(
            "application",
            f"expected a callable, got {type(app).__name__}",
            "point gunicorn (or the worker) at an ASGI application or a consumer function",
        )
    target = app if inspect.isroutine(app) else type(app).__call__
    params, varargs = _positional(app)
    if varargs or len(params) >= 3:
        return "asgi3"
    if len(params) == 1:
        return "asgi2" if params[0].name == "scope" else "legacy"
    raise ConfigurationError(
        "interface",
        f"cannot tell the interface of {_name(app)}{inspect.signature(target)}",
        "use (scope, receive, send) for ASGI 3, (scope) for ASGI 2, (message) for a legacy "
        "consumer, or set interface='asgi3'|'asgi2'|'legacy' explicitly",
    )


def _name(app: Any) -> str:
    return getattr(app, "__qualname__", None) or type(app).__qualname__


def adapt(
    app: Any, interface: str = "auto", legacy_timeout: float = DEFAULT_LEGACY_TIMEOUT
) -> ASGIApp:
    """Wrap ``app`` as an ASGI 3 application. ``interface`` is auto, asgi3, asgi2 or legacy."""
    choice("interface", interface, INTERFACES)
    if interface == "auto":
        interface = detect_interface(app)
    if interface == "asgi3":
        return app  # type: ignore[no-any-return]
    if interface == "asgi2":
        return _asgi2(app)
    return LegacyAdapter(app, timeout=legacy_timeout)


def _asgi2(app: Any) -> ASGIApp:
    async def asgi2_adapter(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    asgi2_adapter.__qualname__ = f"asgi2({_name(app)})"
    return asgi2_adapter


class _LocalReplyLayer:
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


class _LocalReplyChannel(ReplyChannel):
    """A reply channel bound to a ``_LocalReplyLayer``: schedules without protocol checks."""

    layer: _LocalReplyLayer

    def __new__(cls, name: str, layer: _LocalReplyLayer) -> _LocalReplyChannel:
        # Made on the loop for each request: take the layer's loop rather than look it up.
        return super().__new__(cls, name, layer, layer.loop)  # type: ignore[return-value]

    def _schedule(self, content: dict[str, Any]) -> asyncio.Future[None]:
        return self.layer.send_soon(str(self), content)


class LegacyAdapter:
    """ASGI 3 application running a Channels 1 style ``consumer(message)``."""

    def __init__(self, consumer: Callable[[Message], Any], timeout: float = DEFAULT_LEGACY_TIMEOUT):
        positive("legacy_timeout", timeout, "set a positive number of seconds")
        self.consumer = consumer
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LegacyAdapter({_name(self.consumer)})"

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

    async def call(self, message: Message, layer: _LocalReplyLayer) -> None:
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
        response = legacy.LegacyHttpResponse()
        layer = _LocalReplyLayer(asyncio.get_running_loop(), send, response.feed)
        name = _LocalReplyChannel(f"http.response!{next(_ids)}", layer)
        content = legacy.http_request_message(scope, body, name)
        try:
            await self.call(Message(content, channel="http.request", channel_layer=layer), layer)
            while not response.done:
                if not await layer.wait_progress(self.timeout):
                    await self._timed_out(response, send)
                    return
        finally:
            layer.finish(_name(self.consumer))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        replies = legacy.LegacyWebSocketReplies()
        layer = _LocalReplyLayer(asyncio.get_running_loop(), send, replies.feed)
        try:
            await self._websocket_exchange(scope, receive, send, layer, replies)
        finally:
            layer.finish(_name(self.consumer))

    async def _websocket_exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        layer: _LocalReplyLayer,
        replies: legacy.LegacyWebSocketReplies,
    ) -> None:
        name = _LocalReplyChannel(f"websocket.send!{next(_ids)}", layer)
        connect = legacy.websocket_connect_message(scope, name)
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
                    gone = legacy.websocket_disconnect_message(scope, code, name, order)
                    await self._deliver(layer, Message(gone, "websocket.disconnect", layer))
                return
            if event["type"] == "websocket.receive":
                data = legacy.websocket_receive_message(scope, event, name, order)
                await self._deliver(layer, Message(data, "websocket.receive", layer))
                order += 1

    async def _deliver(self, layer: _LocalReplyLayer, message: Message) -> None:
        await self.call(message, layer)
        await layer.drain()

    async def _timed_out(self, response: legacy.LegacyHttpResponse, send: Send) -> None:
        if response.started:
            raise TimeoutError(
                f"legacy consumer {_name(self.consumer)} stopped streaming for {self.timeout} s "
                "(more_content=True without a further message)"
            )
        logger.warning(
            "legacy consumer %s sent no response within %s s; answering 503",
            _name(self.consumer),
            self.timeout,
        )
        await send_status(send, 503, b"Service Unavailable: the consumer did not answer in time\n")


async def send_status(send: Send, status: int, body: bytes) -> None:
    """Send a small plain-text response."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reject_websocket(scope: Scope, send: Send) -> None:
    logger.warning("legacy consumer sent neither accept nor close within the timeout; rejecting")
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b"Service Unavailable: the consumer did not answer in time\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")]
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1013})


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
