"""Every configuration object and check of the package, each resolved once into a frozen object.

* ``checks``: the one wording of a bad setting (``checked``, ``positive``, ``choice``), used by
  every object here, and ``field_defaults``: where every default is read from, its field;
* ``hosts``: the channel layer's ``hosts`` setting, in every form channels_redis accepts, as
  ``HostSpec`` objects;
* ``target``: ``RedisTarget``, where the distributor or a worker finds Redis (``host``/``port``/
  ``db``/``password``, ``url``, ``hosts`` or an existing ``layer``);
* ``layer``: ``LayerConfig``, the channel layer's ``CONFIG``;
* ``distributor``: ``DistributorConfig``; ``node``: ``NodeConfig``, a worker's settings;
* ``server``: ``ServerConfig``, the gunicorn ``ASGIWorker``'s HTTP/WebSocket server, read from
  gunicorn's configuration (``ServerConfig.from_gunicorn``).
"""

from __future__ import annotations

from .checks import checked, choice, positive
from .distributor import DistributorConfig
from .hosts import HostSpec, parse_hosts
from .layer import LayerConfig
from .node import NodeConfig
from .server import ServerConfig
from .target import RedisTarget

__all__ = [
    "DistributorConfig",
    "HostSpec",
    "LayerConfig",
    "NodeConfig",
    "RedisTarget",
    "ServerConfig",
    "checked",
    "choice",
    "parse_hosts",
    "positive",
]
