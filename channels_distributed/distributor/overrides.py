"""The route overrides one edge applies: read from Redis twice a second, checked, logged.

Each edge (one per event loop) reads ``<prefix>:routes`` every ``POLL_INTERVAL`` seconds with
one GET on its own hub: never per request, and an edge applies a change at most that long (and
a Redis round trip) after it was written. A document that changed is checked
(``protocol/overrides.py``) and, when good, applied at once: every route key whose override
changed is logged at INFO (old -> new, the version and who wrote it), and the card says which
version is in force (``figures.EdgeFigures``). A document the edges must not apply (written by
hand) is logged at ERROR once and ignored: the last good overrides stay in force. Nothing read
yet, or Redis not answering: the last good ones stay too (the settings' routes at start).

``pick`` is what the distributor asks per request, only while ``active``: the route key the
request is queued on. ``after_poll`` is called after each poll while a key is drained: the edge
moves its queued requests off it (``draining.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..exceptions import RedisUnavailable, ReplyError
from ..figures import EdgeFigures
from ..forwarding.hub import Hub
from ..protocol.overrides import Override, OverrideError, Picker, RouteOverrides, parse_document
from ..protocol.routing import RouteTable
from ..transport.overrides import read_overrides
from ..transport.refusals import complain
from ..transport.resp import ConnectionLost

__all__ = ["POLL_INTERVAL", "LiveRoutes"]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.5


def describe(override: Override | None) -> str:
    return "settings" if override is None else override.describe()


class LiveRoutes:
    """The overrides in force in one edge, and the poll that keeps them current."""

    def __init__(self, hub: Hub, figures: EdgeFigures, timeout: float,
                 after_poll: Callable[[], None] | None = None,
                 table: RouteTable | None = None) -> None:
        self.hub = hub
        self.figures = figures
        if table is not None:  # what `channels-distributed routes` shows as the settings'
            figures.settings_routes = [[r.pattern.pattern, r.template] for r in table.routes]
        self.timeout = timeout
        self.after_poll = after_poll
        self.key = hub.keys.routes()
        self.current = RouteOverrides()
        self.active = False  # any override in force: the distributor asks pick() only then
        self.closed: frozenset[str] = frozenset()  # drained with nowhere to go: refused
        self.drained: tuple[str, ...] = ()  # every drained key: queued requests move off it
        self._picker = Picker({})
        self._raw: bytes | None = None  # the document in force, as read
        self._refused: bytes | None = None  # the last document refused (logged once)
        self._failing = False  # the last read failed (logged once until one works)
        self._task: asyncio.Task[None] | None = None

    def pick(self, key: str) -> str:
        return self._picker.pick(key)

    def start(self) -> None:
        if self._task is None:
            self._task = self.hub.loop.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _poll(self) -> None:
        while True:
            try:
                read, raw = await self._read()
                if read:
                    self.apply(raw)
                if self.drained and self.after_poll is not None:
                    self.after_poll()
            except Exception:  # a defect: logged, and the next poll tries again
                logger.exception("route overrides: the poll of %s failed", self.key)
            await asyncio.sleep(POLL_INTERVAL)

    async def _read(self) -> tuple[bool, bytes | None]:
        """Whether Redis answered, and the document (None: none written)."""
        shard = self.hub.shard_for(self.key)
        try:
            raw = await asyncio.wait_for(read_overrides(shard, self.key), self.timeout)
        except ReplyError as exc:
            error = complain(exc, "GET", self.key, shard.spec)
            return self._failed(error), None
        except (RedisUnavailable, ConnectionLost, OSError, asyncio.TimeoutError) as exc:
            return self._failed(exc), None
        if self._failing:
            self._failing = False
            logger.info("route overrides: read from %s again", self.key)
        return True, raw

    def _failed(self, error: BaseException) -> bool:
        if not self._failing:
            self._failing = True
            logger.warning("route overrides: cannot read %s (%s); the overrides of version %d "
                           "stay in force", self.key, error or "timed out",
                           self.current.version)
        return False

    def apply(self, raw: bytes | None) -> bool:
        """Apply the document ``raw`` if it changed and is good; whether it was applied."""
        if raw == self._raw or (raw is not None and raw == self._refused):
            return False
        try:
            document = parse_document(raw)
        except OverrideError as exc:
            self._refused = raw
            logger.error("route overrides in %s refused, the overrides of version %d stay in "
                         "force: %s (fix it with channels-distributed routes, e.g. routes "
                         "clear --all)", self.key, self.current.version, exc)
            return False
        before, self.current, self._raw = self.current, document, raw
        self._picker = Picker(document.overrides)
        overrides = document.overrides
        self.closed = frozenset(k for k, o in overrides.items() if o.kind == "drain"
                                and o.into is None)
        self.drained = tuple(k for k, o in overrides.items() if o.kind == "drain")
        self.active = bool(overrides)
        self.figures.routes_version = document.version
        self.figures.overrides = {k: o.describe() for k, o in sorted(overrides.items())}
        self._log(before, document)
        return True

    def _log(self, before: RouteOverrides, after: RouteOverrides) -> None:
        keys = sorted(set(before.overrides) | set(after.overrides))
        changed = [k for k in keys if before.overrides.get(k) != after.overrides.get(k)]
        for key in changed:
            new = after.overrides.get(key)
            logger.info("route key %s: %s -> %s (routes version %d -> %d, by %s)", key,
                        describe(before.overrides.get(key)), describe(new), before.version,
                        after.version, (new.by if new else after.by) or "unknown")
        if not changed and before.version != after.version:
            logger.info("routes version %d -> %d: no route key changed", before.version,
                        after.version)
