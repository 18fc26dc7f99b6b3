"""A worker's settings, checked once into a frozen ``NodeConfig``, whose fields hold their
defaults: ``Node``, ``channels-distributed worker`` and ``manage.py runworker`` read them from
there (``field_defaults(NodeConfig)``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..endpoints import parse_bind
from ..exceptions import ConfigurationError
from ..protocol.keys import valid_channel_name
from ..protocol.routing import valid_route_key
from .checks import choice, known_settings, positive
from .target import CONNECTION_KEYS, RedisTarget

__all__ = ["INTERFACES", "LIFESPAN_MODES", "NodeConfig", "channel_names", "route_keys"]

#: How an application is called (``interfaces.adapt``): judged by its signature, or set.
INTERFACES = ("auto", "asgi3", "asgi2", "legacy")
LIFESPAN_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class NodeConfig:
    """A ``Node``'s resolved settings (its application is not a setting: ``Node`` adapts it)."""

    target: RedisTarget
    keys: tuple[str, ...]  # route keys to take connections from
    channels: tuple[str, ...] = ()  # Channels channels to serve
    interface: str = "auto"
    concurrency: int = 100
    grace: float = 30.0
    window: int = 16
    max_chunk: int = 64 * 1024
    lifespan: str = "auto"
    lifespan_timeout: float = 30.0  # for each of the application's lifespan replies
    redis_timeout: float = 5.0
    health_bind: str | None = None  # HOST:PORT answering /live and /ready (endpoints.py)
    metrics_bind: str | None = None  # HOST:PORT answering /metrics (Prometheus; metrics/)

    def __post_init__(self) -> None:
        choice("interface", self.interface, INTERFACES)
        choice("lifespan", self.lifespan, LIFESPAN_MODES)
        for name in ("concurrency", "window", "max_chunk"):
            positive(name, getattr(self, name), f"set {name} to e.g. 100", integer=True)
        positive("grace", self.grace, "give seconds, e.g. 30", zero=True)
        positive("redis_timeout", self.redis_timeout, "give seconds, e.g. 5")
        positive("lifespan_timeout", self.lifespan_timeout, "give seconds, e.g. 30")
        if self.health_bind is not None:
            parse_bind(self.health_bind, "--health-bind")
        if self.metrics_bind is not None:
            parse_bind(self.metrics_bind, "--metrics-bind")

    @classmethod
    def from_options(cls, *, key: str | None = None, keys: Iterable[str] | None = None,
                     channels: Iterable[str] = (), **options: Any) -> NodeConfig:
        """``Node``'s keyword arguments: ``key=`` or ``keys=``, where Redis is
        (``CONNECTION_KEYS``), and the settings, each named as its field (one not given takes
        the field's default)."""
        connection = {k: options.pop(k) for k in CONNECTION_KEYS if k in options}
        settings = known_settings(cls, options, "a worker", ("key", "keys", *CONNECTION_KEYS))
        names = channel_names(channels)
        return cls(RedisTarget.resolve(**connection), route_keys(key, keys, bool(names)), names,
                   **settings)


def route_keys(key: str | None, keys: Iterable[str] | None,
               allow_none: bool = False) -> tuple[str, ...]:
    """``key=`` or ``keys=`` as a tuple of valid route keys (none only if ``allow_none``)."""
    if key is None and keys is None and allow_none:
        return ()
    if (key is None) == (keys is None):
        raise ConfigurationError("key", "expected key= or keys=, not both or neither",
                                 "pass key='ASGI-testing' or keys=['a', 'b']")
    found = (key,) if key is not None else tuple(keys or ())
    bad = [k for k in found if not valid_route_key(k)]
    if (not found and not allow_none) or bad:
        raise ConfigurationError("keys", f"invalid route key(s) {bad or found!r}",
                                 "use letters, digits, '.', '_' and '-', under 100 characters")
    return found


def channel_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validated names of channels a worker can serve (no process-local ``!`` channels)."""
    found = tuple(names)
    bad = [name for name in found if not valid_channel_name(name) or "!" in name]
    if bad:
        raise ConfigurationError("channels", f"cannot serve channel(s) {bad!r}",
                                 "use plain channel names: letters, digits, '.', '_' and '-'")
    return found
