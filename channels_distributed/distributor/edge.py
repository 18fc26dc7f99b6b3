"""The distributor's transport in one event loop: queue each connection, wait for its worker.

``Edge`` owns the hub (this process's inbox), its presence and the watch of workers. ``connect``
queues a connection request on its route key and waits, in one await, until a worker accepts it;
at the deadline the request is withdrawn from its queue (or, when a worker took it already,
marked given up so that it never runs late). The relay (``relay.py``) then carries its events.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import Any

from ..conf import DistributorConfig
from ..exceptions import (
    ChannelFull,
    ClientGone,
    Drained,
    NoWorker,
    PeerLost,
    RedisUnavailable,
    ReplyError,
    Unserved,
    WorkerSilent,
)
from ..figures import EdgeFigures
from ..forwarding.hub import Hub, now_ms
from ..forwarding.peer import Peer, Watcher, open_peer
from ..logs import Throttle
from ..protocol.envelope import IDEMPOTENT_METHODS, pack_connect
from ..protocol.forwarding import Action, Event, Forwarding, Side
from ..transport import queues
from ..transport.eviction import warn_if_evicting
from ..transport.liveness import Presence, Watch
from ..transport.resp import ConnectionLost
from ..typing import Event as AsgiEvent
from ..typing import Scope
from .draining import Mover
from .overrides import LiveRoutes
from .spread import EdgeSpread

__all__ = ["Edge", "NoWorker", "WorkerSilent"]

logger = logging.getLogger(__name__)

# Enum members used per request, bound once (looked up on their class, each costs a
# descriptor call).
(_GIVE_UP, _PUSH_CONNECT, _WITHDRAW, _CLIENT_GONE, _CONNECT, _END, _TAKEN_BY_WORKER, _WITHDRAWN,
 _EDGE) = (
    Action.GIVE_UP, Action.PUSH_CONNECT, Action.WITHDRAW, Event.CLIENT_GONE, Event.CONNECT,
    Event.END, Event.TAKEN_BY_WORKER, Event.WITHDRAWN, Side.EDGE)


_SWEEP_INTERVAL = 0.05
# How long the edge trusts what it last read of a route's registry, when telling a route with
# no worker from one whose workers are all busy (read only when a request failed).
_REGISTRY_FRESH = 1.0


class Edge:
    """The distributor's transport in one event loop: hub, presence, watch of workers.

    The owner of its connections' peers: it carries out their machines' edge actions
    (queueing the request, giving it up at the deadline, withdrawing it)."""

    def __init__(self, config: DistributorConfig, hub: Hub, *, watch: Watcher,
                 presence: Presence | None = None, figures: EdgeFigures | None = None) -> None:
        """An edge over ``hub``; nothing is started (``start()``, or ``Edge.open(config)``)."""
        self.config = config
        self.hub = hub
        self.presence = presence
        self.watch = watch
        self.figures = figures or EdgeFigures(hub.id, "edge",
                                              worker_timeout=config.worker_timeout)
        self._log = Throttle(logger, config.log_interval)
        self._registered: dict[str, tuple[float, bool]] = {}  # route key -> (when read, any)
        # Connection ids: unique per edge process (a random prefix) and cheap (a counter).
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:10]
        self._queues: dict[str, str] = {}  # route key -> its queue's Redis key
        self._timeout_ms = int(config.worker_timeout * 1000)
        self._queue_ttl_ms = int(max(config.worker_timeout * 2, 60) * 1000)
        # Connections waiting for a worker; one sweeper runs their timers instead of one each.
        self._waiting: set[Peer] = set()
        # Their requests (queue, state key, entry) until given up or withdrawn.
        self._requests: dict[Peer, tuple[str, str, bytes]] = {}
        self._giving_up: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        # The route overrides in force here, and the moves of requests off drained keys.
        self._mover = Mover(self)
        self.routing = LiveRoutes(hub, self.figures, config.redis_timeout,
                                  after_poll=self._mover.sweep, table=config.routes)
        self.spread = EdgeSpread(config.spread, hub)  # hot routes over several sub-queues
        # Told on the card, so that ``status`` shows which keys are spread and where.
        self.figures.spread = {key: len(names) for key, names in self.spread.names.items()}

    @classmethod
    def open(cls, config: DistributorConfig) -> Edge:
        """An edge on the Redis ``config`` names, started in the running event loop."""
        hub = Hub(config.hosts, config.prefix, side=_EDGE, retry_window=config.redis_timeout)
        figures = EdgeFigures(hub.id, "edge", worker_timeout=config.worker_timeout)
        edge = cls(config, hub, watch=Watch(hub), figures=figures)
        edge.presence = Presence(hub, refresh=edge.spread.announce, card=figures.card)
        edge.start()
        return edge

    @property
    def ready(self) -> bool:
        """Whether Redis answers: this edge holds its lease (refreshed every second)."""
        return self.presence is None or self.presence.present.is_set()

    def start(self) -> None:
        """Read the inbox, be present, and check once whether Redis may evict our keys."""
        self.figures.state = "serving"
        self.hub.start()
        self.routing.start()
        if self.presence is not None:
            self.presence.start()
        self._spawn(warn_if_evicting(self.hub.topology))

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def _target(self, key: str, conn: str) -> tuple[str, str]:
        """The queue a request of route ``key`` goes to, and its given-up mark: both under the
        hash tag of one sub-queue of a spread route (GIVE_UP runs over the two in one slot)."""
        if key not in self.spread.names:
            return self._queue(key), self.hub.keys.state(key, conn)
        name = self.spread.target(key)
        return self.hub.keys.queue(name), self.hub.keys.state(name, conn)

    def _queue(self, key: str) -> str:
        queue = self._queues.get(key)
        if queue is None:
            if len(self._queues) > 10_000:  # templates can expand to many keys: stay bounded
                self._queues.clear()
            queue = self._queues[key] = self.hub.keys.queue(key)
        return queue

    # The machine's edge actions ---------------------------------------------------------------
    def act(self, peer: Peer, action: Action) -> None:
        if action is _PUSH_CONNECT:
            queue, _, entry = self._requests[peer]
            # A failed push fails the peer, so the request waits in one await (one wakeup),
            # not for the push's reply and then for the accept.
            self.hub.push(queue, entry, self.config.queue_capacity,
                          self._queue_ttl_ms).add_done_callback(peer.push_failed)
            self._waiting.add(peer)
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = self.hub.loop.create_task(self._sweep())
        elif action is _GIVE_UP:
            self._spawn(self._give_up(peer, *self._requests.pop(peer)))
        elif action is _WITHDRAW:
            request = self._requests.pop(peer, None)
            if request is not None:
                self._spawn(self._withdraw(*request))
        else:  # pragma: no cover - the table gives the edge no other owner action
            raise RuntimeError(f"the edge cannot carry out {action.value!r}")

    async def _sweep(self) -> None:
        loop = self.hub.loop
        while self._waiting:
            await asyncio.sleep(_SWEEP_INTERVAL)
            now = loop.time()
            for peer in list(self._waiting):
                if peer.machine.waiting:
                    peer.tick(now)
                else:
                    self._waiting.discard(peer)

    def _spawn(self, coroutine: Any) -> None:
        task = self.hub.loop.create_task(coroutine)
        self._giving_up.add(task)
        task.add_done_callback(self._giving_up.discard)

    async def _withdraw(self, queue: str, state: str, entry: bytes) -> int:
        """Withdraw the request from its queue (1), or mark it given up if a worker took it (0).
        Redis unreachable or stalled past ``redis_timeout``: 1 (no worker can answer through
        it either; a stalled one that resumes runs this script before anything it is sent
        later on this link, so the request is withdrawn then or marked given up)."""
        try:
            withdrawn = await asyncio.wait_for(
                queues.give_up(self.hub.shard_for(queue), queue, state, entry),
                self.config.redis_timeout)
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError, asyncio.TimeoutError):
            return 1
        return 1 if withdrawn else 0

    async def _give_up(self, peer: Peer, queue: str, state: str, entry: bytes) -> None:
        """At the deadline: withdraw the request, or, if a worker took it already, mark it given
        up so that it cannot be acknowledged from now on, and wait a little longer for the
        accept of a worker that acknowledged it in time. A request the client is told 503 about
        is never run; one a worker holds is answered by it (or with 502), or with 503 when that
        worker says it took it too late to run it (``cd.expired``)."""
        withdrawn = await self._withdraw(queue, state, entry) or await self._mover.moved_away(peer)
        peer.handle(_WITHDRAWN if withdrawn else _TAKEN_BY_WORKER,
                    now=self.hub.loop.time())

    async def connect(self, key: str, scope: Scope, first: AsgiEvent | None) -> Peer | None:
        """Queue the connection on ``key``; the peer once a worker accepted, else None."""
        if key in self.routing.closed:
            self._refuse_drained(key, scope)
            return None
        config, hub = self.config, self.hub
        # Once given up, an accept may still come from a worker that acknowledged the request
        # at its deadline: within a Redis round trip, unless Redis is slow (redis_timeout).
        # At the deadline the request is given up at once: withdrawn if still queued, else marked
        # so that its worker never runs it (it says so, cd.expired: 503 all the same).
        machine = Forwarding(_EDGE, config.window, config.worker_timeout,
                             config.redis_timeout)
        peer = open_peer(hub, self._new_id(), config.window, machine=machine, owner=self,
                         watch=self.watch)
        accepted = peer.accepted
        if accepted is None:  # pragma: no cover - a peer opened without a remote has one
            raise RuntimeError("a peer waiting for its worker has no accept future")
        now = now_ms()
        entry = pack_connect(peer.conn, scope, hub.inbox, hub.id, now + self._timeout_ms,
                             scope.get("method") in IDEMPOTENT_METHODS,
                             None if first is None else first["body"],
                             bool(first and first.get("more_body")), queued_ms=now)
        self._requests[peer] = (*self._target(key, peer.conn), entry)
        figures = self.figures
        figures.route(key).requests += 1
        figures.open += 1
        peer.handle(_CONNECT, now=hub.loop.time())
        ok = False
        try:
            await accepted
            ok = True
        except (NoWorker, Unserved):
            await self._unserved(key, scope)
        except Drained as exc:
            self.failed(key, "drained", "%s", exc)
        except WorkerSilent:
            self.failed(key, "worker_lost", "the worker that took %s never answered",
                        scope.get("path"))
            raise  # not "no worker": one has it, and failed it
        except (RedisUnavailable, ChannelFull, PeerLost) as exc:
            cause = ("queue_full" if isinstance(exc, ChannelFull) else
                     "redis" if isinstance(exc, RedisUnavailable) else "worker_lost")
            self.failed(key, cause, "cannot queue %s: %s", scope.get("path"), exc)
        finally:
            if not ok:
                figures.open -= 1
            # Also when the server cancels us (client gone, shutdown): nothing may leak, and a
            # request nobody waits for any more is withdrawn (or can no longer be acknowledged).
            self._waiting.discard(peer)
            if not ok:
                if peer.machine.waiting:  # cancelled while waiting: withdrawn
                    peer.handle(_CLIENT_GONE)
                peer.handle(_END)
            self._requests.pop(peer, None)
            self._mover.forget(peer)
        return peer if ok else None

    def _refuse_drained(self, key: str, scope: Scope) -> None:
        """A new request for a key drained with nowhere to go: never queued (503)."""
        self.figures.route(key).requests += 1
        self.failed(key, "drained", "%s refused: the route key is drained (channels-distributed "
                    "routes)", scope.get("path"))

    def finish(self, peer: Peer, key: str, disconnect: AsgiEvent) -> None:
        """The connection ended here. If the exchange was not complete (the client left in the
        middle, the server failed to send), the worker's application is told, so it never
        waits forever on a connection that is gone."""
        peer.final = disconnect
        peer.handle(_END)
        self.figures.open -= 1
        failure = peer.failure
        if failure is None or isinstance(failure, ClientGone):
            self.figures.route(key).served += 1
        else:
            self.failed(key, "worker_lost", "the worker serving %s went away: %s",
                        peer.conn, failure)

    def failed(self, key: str, cause: str, message: str, *args: object) -> None:
        """Count a connection not served, and say why (one line per cause and route key per
        ``log_interval``, with how many were not logged)."""
        self.figures.failed(key, cause)
        self._log.log(logging.WARNING, cause, key, f"{cause} on route key %s: {message}", key,
                      *args)

    async def _unserved(self, key: str, scope: Scope) -> None:
        """No worker accepted in time: none registered for the key, or all of them busy."""
        path, timeout = scope.get("path"), self.config.worker_timeout
        registered = await self._any_registered(key)
        if registered is None:
            self.failed(key, "redis", "no worker took %s within %g s, and Redis does not "
                        "answer", path, timeout)
        elif registered:
            self.failed(key, "busy", "no worker took %s within %g s: the route's workers are "
                        "all busy (add workers, or raise their --concurrency)", path, timeout)
        else:
            self.failed(key, "no_worker", "no worker is registered for it; %s waited %g s "
                        "(start one: channels-distributed worker %s ...)", path, timeout, key)

    async def _any_registered(self, key: str) -> bool | None:
        """Whether the route has a registered worker (read at most once a second per key);
        None when Redis does not answer."""
        now = self.hub.loop.time()
        when, found = self._registered.get(key, (-_REGISTRY_FRESH, False))
        if now - when < _REGISTRY_FRESH:
            return found
        registry = self.hub.keys.registry(key)
        try:
            link = await asyncio.wait_for(self.hub.shard_for(registry).link(),
                                          self.config.redis_timeout)
            found = bool(await asyncio.wait_for(link.call("SCARD", registry),
                                                self.config.redis_timeout))
        except (RedisUnavailable, ReplyError, ConnectionLost, OSError, asyncio.TimeoutError):
            return None
        if len(self._registered) > 10_000:
            self._registered.clear()
        self._registered[key] = (now, found)
        return found

    async def close(self) -> None:
        self.figures.state = "draining"
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._giving_up):
            task.cancel()
        await self.routing.stop()
        await self.watch.close()
        if self.presence is not None:
            await self.presence.stop()
        await self.hub.close()
