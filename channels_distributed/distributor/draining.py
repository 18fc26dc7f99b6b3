"""The edge's part of a drain: its own requests still queued on a drained key move, or end 503.

Every edge knows the requests it queued (``Edge._requests``: queue, given-up mark, entry) and
owns their give-up: so each one moves its own, and no request is moved by two edges. After each
poll of the overrides (``overrides.py``), while a key is drained, the edge takes each of its
requests still waiting on that key's queue out of it with a plain ``LREM`` (``queues.withdraw``),
and then:

* ``LREM`` removed nothing: a worker took it; it is in flight and finishes there (the request is
  never marked given up for this, so its worker runs it as it would have);
* removed, and the key is drained into another: the same entry, with the same deadline, is
  pushed onto that key's queue, and the edge's give-up now looks for it there. The timer of its
  deadline runs on unchanged, so a moved request is given up at the same moment as it would
  have been, and a worker never runs it after its deadline (it says ``cd.expired`` instead);
* removed, and drained with nowhere to go: the connection fails with ``Drained`` (503 with
  ``Retry-After``, counted as ``drained``);
* removed, but meanwhile its deadline came or its client left: it is not pushed again, and the
  give-up under way counts it as withdrawn (``moved_away``), so its client gets the 503 that a
  request nobody took gets;
* removed, but meanwhile the drain was lifted or changed: queued where a new request of the key
  goes now (its own key again, if the override was cleared).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ..conf import DistributorConfig
from ..exceptions import Drained, RedisUnavailable, ReplyError
from ..forwarding.hub import Hub
from ..forwarding.peer import Peer
from ..protocol.forwarding import Event, State
from ..transport import queues
from ..transport.resp import ConnectionLost
from .overrides import LiveRoutes
from .spread import EdgeSpread

__all__ = ["Mover"]

logger = logging.getLogger(__name__)

_QUEUED, _FAILED = State.QUEUED, Event.FAILED


class Owner(Protocol):
    """What the mover uses of its edge (``edge.Edge``)."""

    config: DistributorConfig
    hub: Hub
    routing: LiveRoutes
    spread: EdgeSpread
    _requests: dict[Peer, tuple[str, str, bytes]]
    _queue_ttl_ms: int

    def _queue(self, key: str) -> str: ...

    def _spawn(self, coroutine: Any) -> None: ...


class Mover:
    """Moves one edge's queued requests off drained keys (module docstring)."""

    def __init__(self, edge: Owner) -> None:
        self.edge = edge
        # The withdrawal of each request being moved: True once taken out of its queue.
        self._moves: dict[Peer, asyncio.Future[bool]] = {}
        self._tried: dict[Peer, str] = {}  # queues a worker had taken the request from

    def sweep(self) -> None:
        """Start moving every request of this edge still queued on a drained key."""
        edge = self.edge
        requests = edge._requests
        for peer in [p for p in self._tried if p not in requests]:
            del self._tried[peer]
        if not requests:
            return
        # A spread key's requests wait on its sub-queues (spread.py): each is drained too.
        drained = {edge.hub.keys.queue(name): key for key in edge.routing.drained
                   for name in edge.spread.names.get(key, (key,))}
        for peer, (queue, _, _) in list(requests.items()):
            key = drained.get(queue)
            if (key is not None and peer not in self._moves and self._tried.get(peer) != queue
                    and peer.machine.state is _QUEUED):
                self._moves[peer] = edge.hub.loop.create_future()
                edge._spawn(self._move(peer, key))

    async def _move(self, peer: Peer, key: str) -> None:
        edge = self.edge
        done = self._moves[peer]
        request = edge._requests.get(peer)
        if request is None:  # ended before this task ran
            self._moves.pop(peer, None)
            done.set_result(False)
            return
        queue, _, entry = request
        try:
            withdrawn = await asyncio.wait_for(self._take_out(queue, entry),
                                               edge.config.redis_timeout)
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError, asyncio.TimeoutError) as exc:
            # Whether it was taken out is unknown: taken as not (tried again after the next
            # poll). Counting it out could tell its client 503 while a worker runs it.
            logger.warning("could not move a request off drained route key %s: %s", key, exc)
            self._moves.pop(peer, None)
            done.set_result(False)
            return
        done.set_result(withdrawn)
        if not withdrawn:  # a worker has it (the connection may have ended meanwhile)
            self._moves.pop(peer, None)
            if peer in edge._requests:
                self._tried[peer] = queue
            return
        # Kept in _moves (until forget): a give-up under way asks whether it was taken out.
        now = edge.hub.loop.time()
        if peer.machine.state is not _QUEUED or edge._requests.get(peer) is None:
            return  # given up or gone meanwhile: moved_away() tells its give-up
        if peer.machine.expired(now):
            peer.tick(now)  # its deadline came: given up now, never pushed again
            return
        del self._moves[peer]
        self._forward(peer, key, entry)

    async def _take_out(self, queue: str, entry: bytes) -> bool:
        return await queues.withdraw(self.edge.hub.shard_for(queue), queue, entry)

    def _forward(self, peer: Peer, key: str, entry: bytes) -> None:
        edge = self.edge
        # Where a new request of the key goes now: the overrides may have changed during the
        # move (the drain lifted: back onto its own queue, at the tail).
        target = edge.routing.pick(key)
        if target in edge.routing.closed:
            del edge._requests[peer]
            peer.handle(_FAILED, Drained(f"route key {key} was drained while {peer.conn} "
                                         "waited in its queue"))
            return
        edge._requests[peer] = (edge._queue(target), edge.hub.keys.state(target, peer.conn),
                                entry)
        edge.hub.push(edge._queue(target), entry, edge.config.queue_capacity,
                      edge._queue_ttl_ms).add_done_callback(peer.push_failed)

    async def moved_away(self, peer: Peer) -> bool:
        """Whether a move took the request out of its queue and did not queue it again (its
        give-up found nothing to withdraw: it was not a worker that had it)."""
        done = self._moves.get(peer)
        return done is not None and await done

    def forget(self, peer: Peer) -> None:
        self._moves.pop(peer, None)
        self._tried.pop(peer, None)
