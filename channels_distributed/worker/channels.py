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
from collections.abc import Iterable, Mapping
from typing import Any

from ..conf import host_dict
from ..exceptions import ConfigurationError
from ..protocol.keys import valid_channel_name

__all__ = ["ChannelService", "channel_names", "layer_for"]

logger = logging.getLogger("channels_distributed.worker")


def channel_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validated names of channels a worker can serve (no process-local ``!`` channels)."""
    found = tuple(names)
    bad = [name for name in found if not valid_channel_name(name) or "!" in name]
    if bad:
        raise ConfigurationError("channels", f"cannot serve channel(s) {bad!r}",
                                 "use plain channel names: letters, digits, '.', '_' and '-'")
    return found


def layer_for(connection: Mapping[str, Any], prefix: str) -> Any:
    """The channel layer a node's connection settings point at (``layer=`` wins)."""
    if connection.get("layer") is not None:
        return connection["layer"]
    from ..layer import RedisChannelLayer

    if connection.get("url"):
        hosts: Any = [connection["url"]]
    elif connection.get("hosts"):
        hosts = connection["hosts"]
    else:
        hosts = [host_dict(connection.get("host"), connection.get("port"),
                            connection.get("db"), connection.get("password"))]
    return RedisChannelLayer(hosts=hosts, prefix=prefix)


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

    return StoppableWorker


class ChannelService:
    """Channels' ``Worker`` for some channel names, started and stopped with the node."""

    def __init__(self, app: Any, names: tuple[str, ...], layer: Any) -> None:
        self.layer = layer
        self.worker = _worker_class()(application=app, channels=list(names), channel_layer=layer)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.worker.arun())
        self._task.add_done_callback(self._ended)
        logger.warning("serving channel(s) %s", ", ".join(self.worker.channels))

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("channel worker stopped", exc_info=task.exception())

    async def stop(self, grace: float) -> None:
        """Stop listening; let instances take what was already received (up to ``grace``
        seconds), then cancel them: Channels consumers never return on their own."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
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
