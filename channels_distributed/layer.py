"""``RedisChannelLayer``: a drop-in Django Channels 4 channel layer over Redis lists.

::

    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_distributed.layer.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://localhost:6379/0"]},
    }}

The ``CONFIG`` keys are channels_redis's: ``hosts``, ``prefix``, ``expiry``, ``group_expiry``,
``capacity``, ``channel_capacity``, ``symmetric_encryption_keys``, ``serializer_format`` (and
``random_prefix_length``, accepted and unused), plus ``retry_window``: how long a send waits for
an unreachable Redis (or one that answers "not now", as a cluster does during a failover) before
it raises, and ``max_message_size``: the largest message, once encoded, that send and
group_send accept (larger ones raise MessageTooLarge at once).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from channels.layers import BaseChannelLayer

from . import metrics
from .conf import LayerConfig
from .exceptions import ChannelFull, ForeignChannelError, MessageTooLarge, RedisRefused
from .protocol.codec import MessageCodec, encode_entry
from .protocol.keys import KeySpace, local_owner, valid_channel_name, valid_group_name
from .protocol.packing import pack
from .transport import groups
from .transport.loopstate import LoopState
from .transport.reader import BATCH, Reader
from .transport.refusals import report
from .transport.topology import Shard

__all__ = ["RedisChannelLayer"]

logger = logging.getLogger(__name__)

_ROUTES = 10_000  # channels whose reader receive() remembers, at most
_FLAT = frozenset({str, bytes, int, float, bool, type(None)})  # values a copy can share
_FLAT_SIZE = 65536  # larger payloads are not kept after their receive


class RedisChannelLayer(BaseChannelLayer):  # type: ignore[misc]
    """Channel layer over Redis: one list of process-local channels per process, batched
    writes, sharding by hash tag."""

    extensions = ["groups", "flush"]

    def __init__(self, **config: Any) -> None:
        self.config = LayerConfig.from_kwargs(**config)
        super().__init__(expiry=self.config.expiry, capacity=self.config.capacity,
                         channel_capacity=self.config.channel_capacity)
        self.group_expiry = self.config.group_expiry
        self.prefix = self.config.prefix
        self.hosts = self.config.hosts
        self.keys = KeySpace(self.config.prefix)
        self.codec = MessageCodec(self.config.serializer_format,
                                  self.config.symmetric_encryption_keys)
        self.client_prefix = uuid.uuid4().hex
        #: The clock used for expiry, in seconds. Replace it to test expiry without sleeping.
        self.clock: Callable[[], float] = time.time
        self._states: dict[asyncio.AbstractEventLoop, LoopState] = {}
        # Each event loop owns process-local channels of its own (their owner: client_prefix +
        # loop tag), in a list of their own: loops never pop (and strand) each other's messages.
        self._loop_tags = itertools.count(1)
        # Channel -> (its loop's state, its reader), for receive() (see _route).
        self._routes: dict[str, tuple[LoopState, Reader]] = {}
        # The last payload receive() decoded whose values are all immutable, and a copy of it.
        self._last_flat: tuple[bytes | None, dict[str, Any]] = (None, {})
        # Also at exit (or when this layer is collected): loops closed without shutting down
        # their async generators never ran the clean-up of their state.
        weakref.finalize(self, _release_closed, self._states)

    def __repr__(self) -> str:
        hosts = ", ".join(h.describe() for h in self.hosts)
        return f"<RedisChannelLayer prefix={self.prefix!r} hosts=[{hosts}]>"

    # Plumbing -------------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop (the legacy ``message['channel_layer'].loop`` contract).

        Outside a running loop: the loop this layer was last used in, while it is open.
        """
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            for loop in reversed(list(self._states)):
                if not loop.is_closed():
                    return loop
            raise RuntimeError("this channel layer has no event loop yet: use it from "
                               "async code (or through async_to_sync) first") from None

    def _clock_ms(self) -> int:
        return int(self.clock() * 1000)

    def _state(self) -> LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None or state.closed:
            _release_closed(self._states)
            state = self._states[loop] = LoopState(
                loop, self.config.hosts, self.config.retry_window, self._describe_key)
            state.tag = f"{next(self._loop_tags):x}"
            self._routes.clear()  # (those of a state that is gone would keep it alive)
        return state

    def _describe_key(self, key: str) -> str:
        return f"channel list {key!r}"

    def _capacity(self, channel: str) -> int:
        return self.config.capacity_of(self.non_local_name(channel))

    def _reader_factory(self, key: str, competing: bool) -> Callable[[Shard], Reader]:
        least = min([self.config.capacity] + [n for _, n in self.config.channel_capacity])
        return lambda shard: Reader(shard, key, batch=0 if competing else BATCH,
                                    capacity_of=self._capacity, clock_ms=self._clock_ms,
                                    least_capacity=least)

    def _list_capacity(self, key: str) -> int:
        """The capacity of the list at ``key`` (a local list's is its owner's: ``owner!``)."""
        kind, _, name = key[len(self.prefix) + 2:-1].partition(":")  # <prefix>:{i:owner}
        return self.config.capacity_of(f"{name}!" if kind == "i" else name)

    def require_valid_channel_name(self, name: Any, receive: bool = False) -> bool:
        if not valid_channel_name(name):
            raise TypeError(self.invalid_name_error.format("Channel") + f" Got {name!r}.")
        return True

    def require_valid_group_name(self, name: Any) -> bool:
        if not valid_group_name(name):
            raise TypeError(self.invalid_name_error.format("Group") + f" Got {name!r}.")
        return True

    # Channels API -------------------------------------------------------------------------------
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``channel``; returns once Redis has it. Raises ChannelFull when
        the channel is at capacity, MessageTooLarge over ``max_message_size``."""
        try:
            await self.send_soon(channel, message)
        except ChannelFull:
            if metrics.LAYER is not None:
                metrics.LAYER.full("send")
            raise

    def send_soon(self, channel: str, message: dict[str, Any]) -> asyncio.Future[None]:
        """Queue a send now, in call order; the returned future settles when Redis has it."""
        self.require_valid_channel_name(channel)
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, got {type(message).__name__}")
        payload = self.codec.encode(message)
        entry = encode_entry(channel, self._clock_ms() + int(self.expiry * 1000), payload)
        if len(entry) > self.config.max_message_size:
            raise MessageTooLarge(f"channel {channel!r}", len(entry),
                                  self.config.max_message_size)
        key = self.keys.channel(channel)
        state = self._state()
        if metrics.LAYER is not None:
            metrics.LAYER.sent()
        return state.writer_for(key).push(key, entry, self._capacity(channel),
                                          int(self.expiry * 1000))

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for the next message on ``channel``; cancellation-safe."""
        route = self._routes.get(channel)
        # A consumer receives on one channel over and over: its checks and its reader are
        # looked up once per loop state, not per message (the state as _state() finds it).
        state = self._states.get(asyncio.get_running_loop())
        if route is not None and route[0] is state and not route[0].closed:
            reader = route[1]
        else:
            reader = self._route(self._state(), channel)
        while True:
            # The reader's take and withdraw, called here: no coroutine of its own per message
            # (a group message wakes one receive() per member).
            taken = reader.take(channel)
            if isinstance(taken, asyncio.Future):
                try:
                    payload = (await taken)[1]
                except BaseException as exc:
                    reader.withdraw(channel, taken, exc)
                    raise
            else:
                payload = taken[1]
            last = self._last_flat
            if last[0] is payload:  # the same entry's message, for another member of its list
                if metrics.LAYER is not None:
                    metrics.LAYER.received()
                return dict(last[1])
            try:
                message = self.codec.decode(payload)
            except ValueError as exc:
                logger.error("skipping an unreadable message on %s: %s", channel, exc)
                continue
            if len(payload) <= _FLAT_SIZE and all(type(v) in _FLAT for v in message.values()):
                # A group message reaches every member of a list with one payload: the next
                # member gets a copy, as good as decoding again when no value can be mutated.
                self._last_flat = (payload, dict(message))
            if metrics.LAYER is not None:
                metrics.LAYER.received()
            return message

    def _route(self, state: LoopState, channel: str) -> Reader:
        """The reader of ``channel`` in ``state``, once its name is checked; remembered."""
        self.require_valid_channel_name(channel)
        if "!" in channel:
            owner = local_owner(channel)
            if not owner.rpartition(".")[2].startswith(self.client_prefix):
                raise ForeignChannelError(
                    f"{channel!r} belongs to another channel layer instance; a process can only "
                    f"receive on channels made by its own new_channel() (containing "
                    f".{self.client_prefix}...!)")
            key = self.keys.local_list(owner)
            reader = state.reader(key, self._reader_factory(key, competing=False))
        else:
            key = self.keys.channel(channel)
            reader = state.reader(key, self._reader_factory(key, competing=True))
        if len(self._routes) >= _ROUTES:
            self._routes.clear()  # a process makes a channel per connection: bounded
        self._routes[channel] = (state, reader)
        return reader

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new process-local channel name that this layer instance can receive on."""
        tag = self._state().tag
        name = f"{prefix}.{self.client_prefix}{tag}!{uuid.uuid4().hex[:12]}"
        self.require_valid_channel_name(name)
        return name

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await groups.add(self._state().topology, self.keys.group(group),
                         self.keys.group_lists(group), channel, self.clock(),
                         int(self.group_expiry))

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await groups.discard(self._state().topology, self.keys.group(group),
                             self.keys.group_lists(group), channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send to every channel in ``group``: one entry per receiving list (a process's
        process-local channels share one), not per member, built by a script on the server.

        Returns once Redis has every push; a channel at capacity is skipped (logged at INFO), as
        in channels_redis; raises when Redis errors kept the message from any member."""
        self.require_valid_group_name(group)
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, got {type(message).__name__}")
        state = self._state()
        key = self.keys.group(group)
        keys = [key, self.keys.group_lists(group)]
        expiry_ms = int(self.expiry * 1000)
        # The expiry and the payload, packed once for every entry (codec.py's entry format).
        tail = pack(self._clock_ms() + expiry_ms) + pack(self.codec.encode(message))
        limit = self.config.max_message_size
        if len(tail) + 2 > limit:  # no entry can be smaller: say so before anything is sent
            raise MessageTooLarge(f"group {group!r}", len(tail) + 2, limit)
        oldest = self.clock() - self.group_expiry
        topology = state.topology
        # Every list is on the group's server: one round trip, past the writer. Only while the
        # writer has nothing of this loop's unanswered (its private "quiet": every push made
        # before this call has run), else a push queued or held there could run after the
        # script: the entries then queue behind it, and the sender's order holds.
        if (topology.cluster is None and len(topology.shards) == 1
                and not self.config.channel_capacity and state.writer_for(key)._quiet()):
            reply = await groups.fan_out(topology, keys, [
                f"({oldest}", self.prefix, tail, self.config.capacity, expiry_ms, limit])
            self._fanned_out(group, key, reply)
            return
        found = await groups.entries(topology, keys, oldest, self.prefix, tail)
        for _, _, entry in found:  # checked before anything is sent
            if len(entry) > limit:
                raise MessageTooLarge(f"group {group!r}", len(entry), limit)
        pushes = [(count, state.writer_for(list_key).push(
            list_key, entry, self._list_capacity(list_key), expiry_ms))
            for list_key, count, entry in found]
        await self._settle_group(group, sum(count for count, _ in pushes), pushes)

    def _fanned_out(self, group: str, key: str, reply: list[Any]) -> None:
        total, full = int(reply[0]), int(reply[1])
        if total == groups.TOO_LARGE:
            raise MessageTooLarge(f"group {group!r}", full, self.config.max_message_size)
        if metrics.LAYER is not None:
            metrics.LAYER.group_sent(total)
            if full:
                metrics.LAYER.full("group_send", full)
        if full:
            logger.info("%s of %s channels over capacity in group %s", full, total, group)
        if len(reply) > 2:  # Redis 6.2 cannot check first: delivered, but some list's expiry
            refused = reply[2].decode() if isinstance(reply[2], bytes) else str(reply[2])
            report(RedisRefused(
                f"Redis refused to expire a list of group {group!r} ({key!r}): {refused}. The "
                "message was delivered, but the list will not expire: grant the Redis user "
                "+pexpire (see README.rst, 'Redis ACL users')"))

    async def _settle_group(self, group: str, total: int,
                            pushes: list[tuple[int, asyncio.Future[None]]]) -> None:
        if metrics.LAYER is not None:
            metrics.LAYER.group_sent(total)
        results = await asyncio.gather(*(f for _, f in pushes), return_exceptions=True)
        full = sum(n for (n, _), r in zip(pushes, results) if isinstance(r, ChannelFull))
        if full:
            logger.info("%s of %s channels over capacity in group %s", full, total, group)
            if metrics.LAYER is not None:
                metrics.LAYER.full("group_send", full)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ChannelFull):
                raise result

    async def flush(self) -> None:
        """Delete every key under this layer's prefix, on every shard."""
        await self._state().flush(self.keys.pattern())

    async def close(self) -> None:
        """Release this event loop's connections (messages buffered locally go back to Redis)."""
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        _release_closed(self._states)
        self._routes.clear()
        if state is not None:
            await state.close()

    # channels_redis name for close().
    close_pools = close


def _release_closed(states: dict[asyncio.AbstractEventLoop, LoopState]) -> None:
    """Release the connections of loops closed without shutting down their async generators
    (a plain ``new_event_loop()`` ... ``close()``): the next use of the layer from another
    loop, ``close()``, or exit does it, and no "Task was destroyed but it is pending!"."""
    for loop in [loop for loop in states if loop.is_closed()]:
        states.pop(loop).abandon()
