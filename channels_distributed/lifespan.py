"""The ASGI lifespan protocol: startup before serving, shutdown on every exit path.

One runner for the gunicorn worker (``gunicorn.py``) and the distributed worker (``Node``).
``mode`` follows gunicorn's ``asgi_lifespan``: ``auto`` runs it and tolerates applications that
do not support it (they raise or return at once), ``on`` requires it, ``off`` skips it. An
application that sends ``lifespan.startup.failed``, or does not answer within ``timeout``,
fails the start-up (``LifespanFailure``); a failed shutdown is logged, never raised: the process
is stopping anyway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_distributed.exceptions import LifespanFailure, ProtocolError

__all__ = ["Lifespan"]

logger = logging.getLogger(__name__)


class Lifespan:
    """Runs an ASGI 3 application's lifespan once per process."""

    def __init__(self, app: Any, mode: str, state: dict[str, Any], timeout: float,
                 switch_off: str = "--asgi-lifespan off") -> None:
        self.app = app
        self.mode = mode
        self.state = state  # the lifespan scope's ``state``, copied into every scope served
        self.timeout = timeout
        self.switch_off = switch_off  # how the user turns it off, named in the error
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
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or not kind.startswith("lifespan."):
            raise ProtocolError(f"expected a lifespan.* event in lifespan, got {message!r}")
        await self.replies.put(message)

    def _failure(self, phase: str, message: str) -> LifespanFailure:
        return LifespanFailure(phase, message, self.switch_off)

    async def startup(self) -> None:
        """Run startup; raise ``LifespanFailure`` if the application cannot serve."""
        if self.mode == "off":
            return
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        try:
            reply = await self._reply("startup")
            if reply["type"] == "lifespan.startup.failed":
                raise self._failure("startup", reply.get("message", ""))
            if reply["type"] != "lifespan.startup.complete" and self.mode == "on":
                raise self._failure("startup",
                                    f"the application did not complete it ({self.error!r})")
        except LifespanFailure:
            self.task.cancel()  # nothing will be served: the lifespan handler has nothing to do
            raise
        if reply["type"] == "lifespan.startup.complete":
            self.started = True
        else:
            logger.debug("ASGI lifespan not supported by the application: %r", self.error)

    async def _reply(self, phase: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.replies.get(), self.timeout)
        except asyncio.TimeoutError:
            raise self._failure(phase, f"no reply within {self.timeout} s") from None

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
