"""Where a Sentinel-managed master is, kept current by the sentinels' own announcements.

Asking a sentinel only when (re)connecting is not enough: after a graceful ``SENTINEL FAILOVER``
the old master stays up, accepts writes and keeps every connection open for the ~10 s it takes
Sentinel to turn it into a replica; writes made there meanwhile are lost, and receivers wait on
a list nobody pushes to any more. So the link that asked for the address stays open, subscribed
to ``+switch-master``, and the moment a sentinel announces the switch the shard drops every
connection to the old master; they reconnect to the new one. While no sentinel link is open,
each connection asks the sentinels afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..conf.hosts import HostSpec
from ..exceptions import RedisRefused, RedisUnavailable, ReplyError
from .backoff import Backoff
from .resp import RespLink, open_link, quiet

__all__ = ["SentinelWatch"]

logger = logging.getLogger(__name__)

_ASK_TIMEOUT = 2.0


class SentinelWatch:
    """The address of one master, and a subscription that reports when it moves."""

    def __init__(self, spec: HostSpec, on_switch: Callable[[tuple[str, int]], None]) -> None:
        self.spec = spec
        self.address: tuple[str, int] | None = None
        self._on_switch = on_switch
        self._link: RespLink | None = None
        self._asking: asyncio.Future[tuple[str, int]] | None = None
        self._relinking: asyncio.Task[None] | None = None
        self._closed = False

    async def master(self) -> tuple[str, int]:
        """The master's address: the announced one while a sentinel link is open, else asked."""
        link = self._link
        if link is not None and link.is_open and self.address is not None:
            return self.address
        if self._asking is None or self._asking.done():
            self._asking = asyncio.ensure_future(self._ask())
        return await asyncio.shield(self._asking)

    async def _ask(self) -> tuple[str, int]:
        problems = []
        for host, port in self.spec.sentinels:
            try:
                return await self._ask_one(host, port)
            except (RedisUnavailable, RedisRefused, ReplyError, OSError,
                    asyncio.TimeoutError) as exc:
                problems.append(f"{host}:{port}: {exc or 'timed out'}")
        raise RedisUnavailable(f"no master {self.spec.master_name!r} found: "
                               f"{'; '.join(problems)}")

    async def _ask_one(self, host: str, port: int) -> tuple[str, int]:
        login = self.spec.sentinel_login or HostSpec()
        link = await open_link(
            host=host, port=port, ssl_context=login.ssl_context, username=login.username,
            password=login.password, connect_timeout=login.connect_timeout,
            name=f"sentinel {host}:{port}")
        try:
            # One write: no announcement can fall between the answer and the subscription.
            asked, subscribed = link.call_many([
                ("SENTINEL", "get-master-addr-by-name", self.spec.master_name),
                ("SUBSCRIBE", "+switch-master")])
            reply = await asyncio.wait_for(asked, _ASK_TIMEOUT)
            await asyncio.wait_for(subscribed, _ASK_TIMEOUT)
        except BaseException:
            link.close()
            raise
        if not reply:
            link.close()
            raise RedisUnavailable(f"sentinel knows no master {self.spec.master_name!r}")
        address = (_text(reply[0]), int(reply[1]))
        self._adopt(link, address)
        return address

    def _adopt(self, link: RespLink, address: tuple[str, int]) -> None:
        old, self._link = self._link, link
        if old is not None:
            old.close()
        if self._closed:
            link.close()
        link.on_push = self._announced
        link.when_closed(lambda: self._lost(link))
        moved = self.address is not None and self.address != address
        self.address = address
        if moved:
            self._on_switch(address)

    def _announced(self, message: Any) -> None:
        # ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return
        parts = _text(message[2]).split()
        if len(parts) != 5 or parts[0] != self.spec.master_name:
            return
        address = (parts[3], int(parts[4]))
        if address != self.address:
            logger.warning("Sentinel moved master %r from %s:%s to %s:%s; reconnecting",
                           parts[0], *parts[1:])
            self.address = address
            self._on_switch(address)

    def _lost(self, link: RespLink) -> None:
        # The sentinel went away (restart, network): subscribe again through another, and
        # compare the address on the way, or a switch meanwhile would go unnoticed.
        if link is self._link and not self._closed:
            self._link = None
            self._relinking = asyncio.ensure_future(self._relink())

    async def _relink(self) -> None:
        backoff = Backoff(0.1, 5.0)
        while not self._closed and self._link is None:
            await backoff.pause()
            try:
                await self.master()
            except RedisUnavailable as exc:
                logger.debug("sentinels of %r unreachable: %s", self.spec.master_name, exc)

    def close(self) -> None:
        self._closed = True
        for task in (self._asking, self._relinking):
            if task is not None and not task.done():
                task.cancel()
        if self._link is not None:
            self._link.close()
            self._link = None

    def abandon(self) -> None:
        """Its event loop was closed without closing this watch."""
        self._closed = True
        quiet(self._asking)
        quiet(self._relinking)
        if self._link is not None:
            self._link.abandon()
            self._link = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
