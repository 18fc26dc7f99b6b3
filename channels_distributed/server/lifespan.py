"""The ASGI lifespan protocol: startup before accepting, shutdown on every exit path.

``mode`` follows gunicorn's ``asgi_lifespan``: ``auto`` runs it and tolerates applications that do
not support it (they raise or return at once), ``on`` requires it, ``off`` skips it. An application
that sends ``lifespan.startup.failed`` fails the start-up in ``auto`` and ``on``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_distributed.exceptions import LifespanFailure

__all__ = ["Lifespan"]

logger = logging.getLogger("channels_distributed.server")


class Lifespan:
    def __init__(self, app: Any, mode: str, state: dict[str, Any], timeout: float) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.timeout = timeout
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.error: BaseException | None = None

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.inbox.get, self._send)
        except BaseException as exc:
            self.error = exc
            if self.started:
                logger.error("Exception in ASGI lifespan", exc_info=exc)
        finally:
            self.replies.put_nowait({"type": "lifespan.app.exit"})

    async def _send(self, message: dict[str, Any]) -> None:
        await self.replies.put(message)

    async def startup(self) -> None:
        """Run startup; raise ``LifespanFailure`` if the application cannot serve."""
        if self.mode == "off":
            return
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        reply = await self._reply("startup")
        if reply["type"] == "lifespan.startup.complete":
            self.started = True
            return
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanFailure("startup", reply.get("message", ""))
        if self.mode == "on":
            raise LifespanFailure(
                "startup", f"the application did not complete it ({self.error!r})"
            )
        logger.debug("ASGI lifespan not supported by the application: %r", self.error)

    async def _reply(self, phase: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.replies.get(), self.timeout)
        except asyncio.TimeoutError:
            raise LifespanFailure(phase, f"no reply within {self.timeout} s") from None

    async def shutdown(self) -> None:
        """Run shutdown if startup completed; log (never raise) a failure."""
        if not self.started:
            return
        self.started = False
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            reply = await self._reply("shutdown")
        except LifespanFailure as exc:
            logger.error("%s", exc)
        else:
            if reply["type"] == "lifespan.shutdown.failed":
                logger.error("ASGI lifespan shutdown failed: %s", reply.get("message", ""))
        if self.task is not None and not self.task.done():
            self.task.cancel()
