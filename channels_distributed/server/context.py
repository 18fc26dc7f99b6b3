"""``ServerContext``: what a server shares with its connections and their request cycles.

The application, the settings, the loop and the log; the clock deadlines are measured against and
the ``date``/``server`` header lines, both updated by the server's tick; the draining flag; the
lifespan ``state`` copied into every scope; gunicorn's request hooks and access log; the request
counter and what runs as each request starts. ``Server`` owns one and updates it; connections,
request cycles and WebSocket sessions are given it when they are made, so that none of them
imports the server (which imports them).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from channels_distributed.conf.server import ServerConfig
from channels_distributed.server.access import Exchange, RequestInfo, ResponseInfo

__all__ = ["ServerContext"]


class ServerContext:
    def __init__(
        self,
        app: Any,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        log: Any,
        on_request: Callable[[], None] | None = None,
        hooks: Any = None,
        access_log: bool | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.loop = loop
        self.log = log
        # Whether log.access() is called: the owner knows (gunicorn.access_logged); else the
        # logger says so itself, as gunicorn's does from 25.2 on.
        self.access_log = (
            bool(getattr(log, "access_log_enabled", False)) if access_log is None else access_log
        )
        # Called as each HTTP request goes to the application (gunicorn's max_requests).
        self.on_request = on_request
        # Called around each HTTP request when set (gunicorn's pre_request/post_request): an
        # object with request(scope), before(request) and after(request, cycle).
        self.hooks = hooks
        self.state: dict[str, Any] = {}
        self.draining = False
        self.requests = 0
        self.now = 0.0
        self.date_line = b""
        self._date_second = -1
        self.server_line = (
            b"server: %s\r\n" % config.server_header.encode("latin-1")
            if config.server_header
            else b""
        )
        self.refresh(loop.time())

    def refresh(self, now: float) -> None:
        """The server's tick: the loop's time for deadlines, and the Date line once a second."""
        self.now = now
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self.date_line = b"date: %s\r\n" % formatdate(second, usegmt=True).encode("ascii")

    def request_started(self) -> None:
        """An HTTP request goes to the application: count it and tell the owner, before its
        response is written (the last one before a max_requests restart closes its connection)."""
        self.requests += 1
        if self.on_request is not None:
            self.on_request()

    def request_done(self, cycle: Exchange) -> None:
        """A response is complete (a request cycle's, or the server's own ``Answer``): log it."""
        if self.access_log:
            self._log_access(cycle)

    def _log_access(self, cycle: Exchange) -> None:
        request = RequestInfo(cycle.scope)
        elapsed = datetime.timedelta(seconds=time.perf_counter() - cycle.start_time)
        self.log.access(ResponseInfo(cycle), request, request.environ(), elapsed)
