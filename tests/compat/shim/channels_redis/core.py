"""``channels_redis.core`` public API, backed by ``channels_distributed.layer``."""

from __future__ import annotations

import os
from typing import Any

from channels.exceptions import ChannelFull

from channels_distributed.layer import RedisChannelLayer as _DistributedLayer

__all__ = ["ChannelFull", "RedisChannelLayer"]

# Set by the runner: the private redis-server it started. Upstream tests construct
# RedisChannelLayer() with no hosts, which would otherwise mean localhost:6379 (the shared Redis
# that tests must never touch).
_HOST_ENV = "CHANNELS_REDIS_COMPAT_HOST"
_FORBIDDEN_PORT = 6379


class RedisChannelLayer(_DistributedLayer):
    """Our layer, with ``hosts`` defaulting to the runner's private server instead of :6379."""

    def __init__(self, hosts: Any = None, **config: Any) -> None:
        if hosts is None:
            hosts = [os.environ[_HOST_ENV]]
        super().__init__(hosts=hosts, **config)
        # A safety net rather than a test: if a hosts constant escaped the conftest redirection,
        # fail loudly here instead of writing to (and flushing!) somebody's shared Redis.
        for spec in self.hosts:
            if not spec.path and spec.port == _FORBIDDEN_PORT:
                raise RuntimeError(
                    f"compat suite tried to use {spec.describe()}; the runner must redirect every "
                    f"host to its private redis-server ({os.environ.get(_HOST_ENV)})")
