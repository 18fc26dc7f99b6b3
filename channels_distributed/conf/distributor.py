"""The path distributor's settings, checked once into a frozen ``DistributorConfig``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError
from ..protocol.routing import RouteTable, valid_route_key
from ..protocol.spread import MAX_SPREAD
from .checks import known_settings, positive
from .hosts import HostSpec
from .target import CONNECTION_KEYS, RedisTarget

__all__ = ["DistributorConfig"]


@dataclass(frozen=True)
class DistributorConfig:
    """The distributor's resolved settings."""

    routes: RouteTable
    hosts: tuple[HostSpec, ...]
    prefix: str = RedisTarget.prefix
    worker_timeout: float = 5.0
    no_worker_status: int = 503
    retry_after: int = 1
    inline_body: int = 64 * 1024
    max_chunk: int = 64 * 1024
    window: int = 16
    queue_capacity: int = 10_000
    redis_timeout: float = 1.0
    # Health probes the edge answers itself, never routed (None: off): GET -> 200, and for
    # ready_path 503 while Redis does not answer.
    live_path: str | None = None
    ready_path: str | None = None
    # Prometheus metrics of this edge (of every process of a gunicorn edge: docs/metrics.rst),
    # answered by the edge itself at this path; None: off, and prometheus_client not imported.
    metrics_path: str | None = None
    log_interval: float = 10.0  # one line per failure cause and route key per interval
    # Hot route keys spread over several sub-queues in different hash slots, so that several
    # Redis primaries carry them (protocol/spread.py): route key -> how many (1: not spread).
    spread: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("worker_timeout", "redis_timeout", "log_interval"):
            positive(name, getattr(self, name))
        own: dict[str, str] = {}
        for name, example in (("live_path", "/-/live"), ("ready_path", "/-/ready"),
                              ("metrics_path", "/-/metrics")):
            path = getattr(self, name)
            if path is not None and (not isinstance(path, str) or not path.startswith("/")):
                raise ConfigurationError(name, f"expected a path starting with '/', got "
                                         f"{path!r}", f"write e.g. {name}='{example}', or None "
                                         "to answer none")
            if path is not None and path in own:
                raise ConfigurationError(name, f"{path!r} is {own[path]} already",
                                         "give each of live_path, ready_path and metrics_path "
                                         "a path of its own")
            if path is not None:
                own[path] = name
        for name in ("inline_body", "max_chunk", "window", "queue_capacity", "retry_after"):
            positive(name, getattr(self, name), integer=True)
        object.__setattr__(self, "spread", _spread(self.spread))
        status = self.no_worker_status
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ConfigurationError("no_worker_status", f"expected an HTTP error status, got "
                                     f"{status!r}", "use e.g. 503 or 504")

    @classmethod
    def from_options(cls, routes: Mapping[str, str] | Iterable[tuple[str, str]],
                     **options: Any) -> DistributorConfig:
        """``PathDistributor``'s keyword arguments: where Redis is, then its own settings."""
        connection = {k: options.pop(k) for k in CONNECTION_KEYS if k in options}
        target = RedisTarget.resolve(**connection)
        settings = known_settings(cls, options, "the distributor", CONNECTION_KEYS)
        return cls(RouteTable(routes), target.hosts, target.prefix, **settings)


def _spread(value: Any) -> dict[str, int]:
    """The ``spread`` setting, checked: a mapping of route keys to 1..MAX_SPREAD."""
    fix = f"map each route key to its number of sub-queues (1 to {MAX_SPREAD}), e.g. {{'api': 3}}"
    if not isinstance(value, Mapping):
        raise ConfigurationError("spread", f"expected a dict, got {value!r}", fix)
    for key, n in value.items():
        if not valid_route_key(key):
            raise ConfigurationError("spread", f"{key!r} is not a route key (letters, digits, "
                                     "'.', '_' and '-', under 100 characters)", fix)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SPREAD:
            raise ConfigurationError("spread", f"{key!r}: expected a whole number from 1 to "
                                     f"{MAX_SPREAD}, got {n!r}", fix)
    return dict(value)
