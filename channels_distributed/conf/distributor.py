"""The path distributor's settings, checked once into a frozen ``DistributorConfig``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError
from ..protocol.routing import RouteTable
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

    def __post_init__(self) -> None:
        for name in ("worker_timeout", "redis_timeout"):
            positive(name, getattr(self, name))
        for name in ("inline_body", "max_chunk", "window", "queue_capacity", "retry_after"):
            positive(name, getattr(self, name), integer=True)
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
