"""Where Redis is, for the distributor and the workers: the forms the channel layer accepts.

A ``PathDistributor`` or a ``Node`` points at Redis one way: the seed's ``host``/``port``/``db``/
``password``, a ``url``, a channel layer ``hosts`` list, or an existing ``layer`` (its servers
and prefix). ``RedisTarget.resolve`` checks that once and keeps the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError
from .hosts import HostSpec, parse_hosts
from .layer import LayerConfig, key_prefix

__all__ = ["CONNECTION_KEYS", "RedisTarget"]

#: The keyword arguments of PathDistributor and Node that say where Redis is.
CONNECTION_KEYS = ("host", "port", "db", "password", "url", "hosts", "layer", "prefix")


@dataclass(frozen=True)
class RedisTarget:
    """Redis servers and key prefix, resolved once."""

    hosts: tuple[HostSpec, ...]
    prefix: str = LayerConfig.prefix  # the channel layer's default, channels_redis' one
    #: The same servers as a channel layer's ``hosts`` setting (None when ``layer`` was given).
    layer_hosts: tuple[Any, ...] | None = None
    #: The channel layer given as ``layer=``, if any.
    layer: Any = None

    @classmethod
    def resolve(cls, *, host: str | None = None, port: int | str | None = None,
                db: int | str | None = None, password: str | None = None,
                url: str | None = None, hosts: Any = None, layer: Any = None,
                prefix: str | None = None) -> RedisTarget:
        """Redis servers and key prefix from the same forms the channel layer accepts."""
        given = [name for name, value in (("host/port", host or port), ("url", url),
                                          ("hosts", hosts), ("layer", layer)) if value]
        if len(given) > 1:
            raise ConfigurationError(given[1], f"given together with {given[0]}",
                                     "point at Redis one way only")
        if layer is not None:
            config: LayerConfig = layer.config
            return cls(config.hosts, prefix or config.prefix, None, layer)
        if db is not None and (url or hosts):
            raise ConfigurationError("db", "given with url/hosts", "put the database in the URL")
        if url:
            setting: tuple[Any, ...] = (url,)
        elif hosts:
            setting = tuple(hosts) if isinstance(hosts, (list, tuple)) else hosts
        else:
            setting = (host_dict(host, port, db, password),)
        return cls(parse_hosts(setting), key_prefix(prefix or cls.prefix), setting)


def host_dict(host: str | None, port: int | str | None, db: int | str | None,
              password: str | None) -> dict[str, Any]:
    """The seed's ``host``, ``port``, ``db`` and ``password`` as a channel layer host dict."""
    try:
        number = int(port) if port is not None else 6379
        database = int(db) if db is not None else 0
    except (TypeError, ValueError):
        raise ConfigurationError("port", f"expected a port number and a database number, got "
                                 f"port={port!r} db={db!r}", "give e.g. port=6379, db=0") from None
    return {"host": host or "localhost", "port": number, "db": database, "password": password}
