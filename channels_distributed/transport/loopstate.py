"""Per-event-loop transport state, and its clean release when the loop shuts down.

Connections belong to the loop that opened them. Django's ``async_to_sync`` runs each call of a
sync view in a fresh loop and closes it afterwards, so every loop gets its own state, and the
state releases itself when the loop shuts down its async generators (``asyncio.run`` and asgiref
both do) — no monkey-patching of ``loop.close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from ..conf.hosts import HostSpec
from .reader import Reader
from .refusals import replies
from .topology import Shard, Topology
from .writer import BatchWriter

__all__ = ["LoopState"]

logger = logging.getLogger(__name__)


class LoopState:
    """Topology, writers and readers of one layer in one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hosts: Sequence[HostSpec],
                 retry_window: float, describe: Callable[[str], str]) -> None:
        self.loop = loop
        self.topology = Topology(hosts, retry_window)
        self._describe = describe
        #: Lists whose pushes ring a doorbell (BatchWriter.rings), one table for every writer.
        self.rings: dict[str, str] = {}
        self.writers = [self._writer(shard) for shard in self.topology.shards]
        self.readers: dict[str, Reader] = {}
        self.closed = False
        self.tag = ""  # names the owner of this loop's process-local channels; set by the layer
        self._closing: asyncio.Future[None] | None = None
        self._guard = self._release_on_shutdown()
        _prime(self._guard)

    def writer_for(self, key: str) -> BatchWriter:
        index = self.topology.shard_for(key).index
        if index >= len(self.writers):  # a cluster primary that came with a resharding
            for shard in self.topology.shards[len(self.writers):]:
                self.writers.append(self._writer(shard))
        return self.writers[index]

    def _writer(self, shard: Shard) -> BatchWriter:
        writer = BatchWriter(shard, self._describe, self.loop, self.rings)
        if self.topology.cluster is not None:
            writer.redirect = self.writer_for
        return writer

    def reader(self, key: str, factory: Callable[[Shard], Reader]) -> Reader:
        reader = self.readers.get(key)
        if reader is None:
            reader = self.readers[key] = factory(self.topology.shard_for(key))
            if self.topology.cluster is not None:
                reader.relocate = self.topology.shard_for
        return reader

    async def drain_writes(self) -> None:
        for writer in self.writers:
            await writer.wait_idle()

    async def flush(self, pattern: str) -> None:
        """Delete every key matching ``pattern`` on every shard, once the writes made so far
        are in, and drop what this loop's readers had buffered too."""
        await self.drain_writes()
        for shard in self.topology.shards:
            link = await shard.link()
            cursor: Any = b"0"
            while True:
                [(cursor, keys)] = await replies(
                    [link.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)], "SCAN",
                    pattern, shard.spec)
                if keys:
                    # A cluster refuses one UNLINK over keys of several slots (CROSSSLOT).
                    unlinks = ([("UNLINK", key) for key in keys] if self.topology.cluster
                               else [("UNLINK", *keys)])
                    await replies(link.call_many(unlinks), "UNLINK", pattern, shard.spec)
                if cursor in (b"0", 0):
                    break
        for reader in self.readers.values():
            reader.unclaimed()

    def abandon(self) -> None:
        """Release everything of a loop that was closed without shutting down its async
        generators (a plain ``new_event_loop()`` ... ``close()``): it can run nothing now, so
        connections are shut down directly and its tasks are left to be collected quietly.
        Messages buffered for it are lost with it (they expire in Redis' stead)."""
        self.closed = True
        for reader in self.readers.values():
            reader.abandon()
        self.readers.clear()
        for writer in self.writers:
            writer.abandon()
        self.topology.abandon()

    async def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self.closed = True
        try:
            await self.drain_writes()
        except Exception:
            logger.debug("pending writes failed while closing", exc_info=True)
        readers = list(self.readers.values())
        self.readers.clear()
        await asyncio.gather(*(reader.close() for reader in readers), return_exceptions=True)
        await self._return_unclaimed(readers)
        await self.topology.close()

    async def _return_unclaimed(self, readers: list[Reader]) -> None:
        # Messages popped for a receiver that went away go back to the head of their list, so
        # another loop or process can still receive them.
        for reader in readers:
            count, commands = reader.give_back_commands()
            if not count:
                continue
            link = reader.shard.connected_link
            try:
                if link is None:
                    link = await asyncio.wait_for(reader.shard.link(), 1.0)
                await asyncio.wait_for(asyncio.gather(*link.call_many(commands)), 2.0)
            except Exception as exc:
                logger.warning("lost %d unreceived messages of %s while closing: %s",
                               count, reader.key, exc)

    async def _release_on_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not self.loop.is_closed():
                await self.close()


def _prime(agen: AsyncGenerator[None, None]) -> None:
    """Start ``agen`` up to its first ``yield`` right now, registering it with the running loop.

    The loop then closes it in ``shutdown_asyncgens()``, which runs its ``finally`` block.
    """
    step = agen.__anext__()
    with contextlib.suppress(StopIteration):
        step.send(None)  # type: ignore[attr-defined]
