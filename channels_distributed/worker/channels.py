"""Serving ordinary Channels channels in a ``Node``, as Channels' own ``runworker`` does.

A Django project sends background work with ``channel_layer.send("thumbnails", {...})`` and
routes ``"channel"`` scopes with ``ChannelNameRouter``. A ``Node`` given ``channels=[...]`` listens
on those channels through the channel layer and runs the application for them with Channels'
own ``channels.worker.Worker`` (one application instance per channel), beside the forwarded
HTTP and WebSocket connections of its route keys.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..conf import RedisTarget

__all__ = ["ChannelService", "layer_for"]

logger = logging.getLogger(__name__)


def layer_for(target: RedisTarget) -> Any:
    """The channel layer a node's connection settings point at (``layer=`` wins)."""
    if target.layer is not None:
        return target.layer
    from ..layer import RedisChannelLayer

    return RedisChannelLayer(hosts=list(target.layer_hosts or ()), prefix=target.prefix)


def _worker_class() -> Any:
    from channels.worker import Worker

    class StoppableWorker(Worker):  # type: ignore[misc]
        """Channels' Worker, whose listeners stop when it is cancelled (Worker.handle() waits
        on them with asyncio.wait, which does not cancel them: they would keep popping
        messages nobody will handle)."""

        async def handle(self) -> None:
            listeners = [asyncio.ensure_future(self.listener(name)) for name in self.channels]
            try:
                await asyncio.gather(*listeners)
            finally:
                for listener in listeners:
                    listener.cancel()
                await asyncio.gather(*listeners, return_exceptions=True)

        async def serve(self) -> None:
            """The listeners and asgiref's application checker (which cleans up finished
            instances) until cancelled: asgiref's ``arun`` does the same from 3.8 on, and 3.7
            (the floor) has none."""
            checker = asyncio.ensure_future(self.application_checker())
            try:
                await self.handle()
            finally:
                checker.cancel()
                await asyncio.gather(checker, return_exceptions=True)

    return StoppableWorker


class ChannelService:
    """Channels' ``Worker`` for some channel names, started and stopped with the node."""

    def __init__(self, app: Any, names: tuple[str, ...], layer: Any) -> None:
        self.layer = layer
        self.worker = _worker_class()(application=app, channels=list(names), channel_layer=layer)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.worker.serve())
        self._task.add_done_callback(self._ended)
        logger.info("serving channel(s) %s", ", ".join(self.worker.channels))

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("channel worker stopped", exc_info=task.exception())

    async def stop_listening(self) -> None:
        """Take no more messages from the channels (the node is stopping)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def stop(self, grace: float) -> None:
        """Stop listening; let instances take what was already received (up to ``grace``
        seconds), then cancel them: Channels consumers never return on their own. Then close
        the channel layer: the node calls this last, once its connections are finished."""
        await self.stop_listening()
        instances = list(self.worker.application_instances.values())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # Polled: the instances' queues give no signal (nobody calls task_done on them).
        while loop.time() < deadline and any(  # noqa: ASYNC110
                not i["input_queue"].empty() and not i["future"].done() for i in instances):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0)  # the last message taken gets its first step
        futures = [i["future"] for i in instances if not i["future"].done()]
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
        close = getattr(self.layer, "close", None)
        if close is not None:
            await close()
