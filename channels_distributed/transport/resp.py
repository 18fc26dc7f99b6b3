"""A lean, pipelined RESP2 connection: the hot path of every push and pop.

Why not redis-py's connection here: its per-command overhead dominates at the rates this
transport reaches, its automatic retries can re-send a command that already ran (redis-py #2807),
and a cancelled blocking command can wedge a pooled connection (redis-py #2028/#2579). This link
writes each batch of commands with one ``transport.write`` and matches replies to futures in
order, so a caller that stops waiting never desynchronises the stream. hiredis parses and packs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

import hiredis

from .. import metrics
from ..conf.hosts import HostSpec
from ..exceptions import RedisUnavailable, ReplyError
from .refusals import complain

__all__ = ["ConnectionLost", "RespLink", "open_link", "quiet"]


class ConnectionLost(RedisUnavailable):
    """The connection closed with commands in flight; they may or may not have run."""


def quiet(task: asyncio.Future[Any] | None) -> None:
    """Mark a task of a closed event loop as expected to be destroyed unfinished.

    Its loop will never run it again; when it is collected asyncio would print "Task was
    destroyed but it is pending!", which here says nothing wrong.
    """
    if task is not None and not task.done():
        with contextlib.suppress(AttributeError):
            task._log_destroy_pending = False  # type: ignore[attr-defined]


class RespLink(asyncio.Protocol):
    """One Redis connection. ``call``/``call_many`` return futures resolved in reply order."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._reader = hiredis.Reader(replyError=ReplyError, notEnoughData=False)
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._closed: asyncio.Future[None] | None = None
        self._lost_reason: BaseException | None = None
        self._closing = False  # closed on purpose: not counted as lost (metrics)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Called with each message on a link that SUBSCRIBEd (replies nobody asked for).
        self.on_push: Callable[[Any], None] | None = None
        #: Called when Redis Cluster answers MOVED (the slot map is stale; ASK is not: a slot
        #: being migrated still belongs to its source).
        self.on_moved: Callable[[], None] | None = None

    # asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = transport  # type: ignore[assignment]
        # Kept: get_running_loop() is a getpid() syscall on Python < 3.12.
        self._loop = asyncio.get_running_loop()
        self._closed = self._loop.create_future()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiters = self._waiters
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._abort(f"protocol error from Redis: {exc}")
                return
            if reply is False:
                return
            if not waiters:
                if self.on_push is not None:
                    self.on_push(reply)
                    continue
                self._abort("Redis sent a reply nobody asked for")
                return
            waiter = waiters.popleft()
            if waiter.done():
                continue  # the caller gave up waiting; the reply is simply dropped
            if isinstance(reply, ReplyError):
                if self.on_moved is not None and str(reply).startswith("MOVED"):
                    self.on_moved()
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._closing and metrics.LAYER is not None:
            metrics.LAYER.redis_error("lost")
        reason = self._lost_reason or ConnectionLost(
            f"connection to Redis {self.name} lost" + (f": {exc}" if exc else "")
        )
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(reason)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # Without a base class these three must be spelled out: the stock asyncio loop calls them
    # (uvloop checks first), and a missing one was logged as "Fatal error" on every close that
    # Redis starts (restart, CLIENT KILL, idle timeout, failover, every TLS close).
    def eof_received(self) -> bool:
        return False  # Redis closed its side: let the transport close, connection_lost follows

    def pause_writing(self) -> None:
        # Writes are never awaited: a batch is one transport.write, and the transport buffers
        # what the socket cannot take. Back-pressure comes from capacities, not from here.
        pass

    def resume_writing(self) -> None:
        pass

    # Commands -----------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        transport = self._transport
        return transport is not None and not transport.is_closing()

    @property
    def pending(self) -> int:
        return len(self._waiters)

    def call(self, *args: Any) -> asyncio.Future[Any]:
        return self.call_many((args,))[0]

    def call_many(self, commands: Any) -> list[asyncio.Future[Any]]:
        """Send every command in one write; one future per command, in order."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionLost(f"connection to Redis {self.name} is closed")
        loop = self._loop
        if loop is None:
            raise ConnectionLost(f"connection to Redis {self.name} is not open yet")
        futures = []
        chunks = []
        for args in commands:
            chunks.append(hiredis.pack_command(args))
            future = loop.create_future()
            futures.append(future)
        self._waiters.extend(futures)
        transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
        return futures

    def _abort(self, why: str) -> None:
        self._lost_reason = ConnectionLost(f"connection to Redis {self.name} dropped: {why}")
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        transport = self._transport
        if transport is None:
            return
        self._closing = True
        loop = self._loop
        if loop is not None and loop.is_closed():
            self.abandon()  # transport.close() would need the loop: it raises on a closed one
        else:
            transport.close()

    def abandon(self) -> None:
        """Release the connection of an event loop that was closed without closing it first.

        That loop runs no callback any more, so the transport cannot close itself: the socket
        is shut down directly (Redis drops the client at once; the descriptor goes with the
        transport object) and nobody waiting is woken (they belong to the dead loop too).
        """
        transport, self._transport = self._transport, None
        self._closing = True
        self._waiters.clear()
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(Exception):  # already shut down, or no such call
                    sock.shutdown(socket.SHUT_RDWR)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the connection is closed (now, if it already is)."""
        if self._closed is None or self._closed.done():
            callback()
        else:
            self._closed.add_done_callback(lambda _: callback())

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)

    async def aclose(self) -> None:
        self.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.wait_closed(), 1.0)


async def open_link(
    *,
    host: str,
    port: int,
    path: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
    db: int = 0,
    connect_timeout: float = 5.0,
    name: str = "",
) -> RespLink:
    """Connect and log in (AUTH, SELECT). Raises RedisUnavailable if that fails."""
    loop = asyncio.get_running_loop()
    where = f"unix:{path}" if path else f"{host}:{port}"

    async def connect() -> RespLink:
        if path:
            _, link = await loop.create_unix_connection(lambda: RespLink(where), path)
        else:
            _, link = await loop.create_connection(
                lambda: RespLink(where), host, port, ssl=ssl_context,
                server_hostname=host if ssl_context else None,
            )
        sock = link._transport.get_extra_info("socket") if link._transport else None
        if sock is not None and not path:
            # Keepalive lets the kernel notice a peer that vanished (a partition, a failover)
            # on connections that otherwise only wait.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            await _handshake(link, username, password, db)
        except BaseException:
            link.close()
            raise
        return link

    try:
        link = await asyncio.wait_for(connect(), connect_timeout)
    except (OSError, TimeoutError, ConnectionLost) as exc:
        raise RedisUnavailable(f"cannot connect to Redis at {where}: {exc or 'timed out'}") from exc
    except ReplyError as exc:
        # LOADING and the like pass; a wrong password or a missing +select do not.
        spec = HostSpec(host=host, port=port, path=path, username=username, db=db)
        raise complain(exc, "the login (AUTH, SELECT)", None, spec) from None
    return link


async def _handshake(link: RespLink, username: str | None, password: str | None, db: int) -> None:
    commands: list[tuple[Any, ...]] = []
    if password is not None:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if db:
        commands.append(("SELECT", db))
    if commands:
        replies = await asyncio.gather(*link.call_many(commands), return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
