"""Settings and keyword arguments -> frozen, validated configuration objects, in one place.

The channel layer's keyword arguments are exactly its ``CHANNEL_LAYERS`` ``CONFIG`` keys, with the
same names as channels_redis so that a project can switch by changing ``BACKEND``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError
from .hosts import HostSpec, parse_hosts
from .protocol.keys import valid_prefix
from .protocol.routing import RouteTable

__all__ = ["DistributorConfig", "HostSpec", "LayerConfig", "connection_settings", "host_dict",
           "parse_hosts"]


def _require(key: str, value: Any, kind: type | tuple[type, ...], fix: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigurationError(key, f"expected a number, got {value!r}", fix)
    if not isinstance(value, kind):
        raise ConfigurationError(key, f"expected {_kind_name(kind)}, got {value!r}", fix)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _positive(key: str, value: Any, fix: str) -> float:
    number = _require(key, value, (int, float), fix)
    if number <= 0:
        raise ConfigurationError(key, f"expected a positive number, got {value!r}", fix)
    return float(number)


def _capacities(value: Any) -> tuple[tuple[re.Pattern[str], int], ...]:
    import fnmatch

    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigurationError("channel_capacity", f"expected a dict, got {value!r}",
                                 "map glob patterns or compiled regexes to capacities")
    compiled = []
    for pattern, capacity in value.items():
        _require("channel_capacity", capacity, int, "capacities are whole numbers")
        if capacity <= 0:
            raise ConfigurationError(
                "channel_capacity", f"the capacity of {pattern!r} is {capacity}, not a positive "
                "number", "give each pattern a whole number of messages above zero, e.g. 100")
        regex = pattern if hasattr(pattern, "match") else re.compile(fnmatch.translate(pattern))
        compiled.append((regex, int(capacity)))
    return tuple(compiled)


@dataclass(frozen=True)
class LayerConfig:
    """The channel layer's resolved configuration."""

    hosts: tuple[HostSpec, ...]
    prefix: str = "asgi"
    expiry: float = 60.0
    group_expiry: float = 86400.0
    capacity: int = 100
    channel_capacity: tuple[tuple[re.Pattern[str], int], ...] = ()
    symmetric_encryption_keys: tuple[str | bytes, ...] = ()
    serializer_format: str = "msgpack"
    retry_window: float = 5.0

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> LayerConfig:
        known = {"hosts", "prefix", "expiry", "group_expiry", "capacity", "channel_capacity",
                 "symmetric_encryption_keys", "serializer_format", "random_prefix_length",
                 "retry_window"}
        for key in kwargs:
            if key not in known:
                raise ConfigurationError(
                    key, "is not a setting of RedisChannelLayer",
                    f"remove it from CONFIG; the settings are {sorted(known)}",
                )
        return cls(
            hosts=parse_hosts(kwargs.get("hosts")),
            prefix=_prefix(kwargs.get("prefix", "asgi")),
            expiry=_positive("expiry", kwargs.get("expiry", 60), "give seconds, e.g. 60"),
            group_expiry=_positive("group_expiry", kwargs.get("group_expiry", 86400),
                                   "give seconds, e.g. 86400"),
            capacity=int(_positive("capacity", _require("capacity", kwargs.get("capacity", 100),
                                                        int, "give a whole number"),
                                   "give a whole number, e.g. 100")),
            channel_capacity=_capacities(kwargs.get("channel_capacity")),
            symmetric_encryption_keys=_keys(kwargs.get("symmetric_encryption_keys")),
            serializer_format=_require("serializer_format",
                                       kwargs.get("serializer_format", "msgpack"), str,
                                       "use 'msgpack' or 'json'"),
            retry_window=_positive("retry_window", kwargs.get("retry_window", 5.0),
                                   "give seconds, e.g. 5"),
        )

    def capacity_of(self, channel: str) -> int:
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity


def _prefix(value: Any) -> str:
    if not valid_prefix(value):
        raise ConfigurationError("prefix", f"expected a string without braces or spaces, "
                                 f"got {value!r}", "use a plain name such as 'asgi'")
    return str(value)


def _keys(value: Any) -> tuple[str | bytes, ...]:
    if not value:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigurationError("symmetric_encryption_keys", f"expected a list of keys, got "
                                 f"{type(value).__name__}", "wrap the key in a list: [key]")
    for key in value:
        _require("symmetric_encryption_keys", key, (str, bytes), "keys are str or bytes")
    return tuple(value)


def connection_settings(*, host: str | None = None, port: int | str | None = None,
                        db: int | str | None = None, password: str | None = None,
                        url: str | None = None, hosts: Any = None, layer: Any = None,
                        prefix: str | None = None) -> tuple[tuple[HostSpec, ...], str]:
    """Redis servers and key prefix from the same forms the channel layer accepts."""
    given = [name for name, value in (("host/port", host or port), ("url", url),
                                      ("hosts", hosts), ("layer", layer)) if value]
    if len(given) > 1:
        raise ConfigurationError(given[1], f"given together with {given[0]}",
                                 "point at Redis one way only")
    if layer is not None:
        config: LayerConfig = layer.config
        return config.hosts, prefix or config.prefix
    if url:
        specs = parse_hosts([url])
    elif hosts:
        specs = parse_hosts(hosts)
    else:
        specs = parse_hosts([host_dict(host, port, db, password)])
    if db is not None and (url or hosts):
        raise ConfigurationError("db", "given with url/hosts", "put the database in the URL")
    return specs, LayerConfig.from_kwargs(hosts=[], prefix=prefix or "asgi").prefix


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


def _positive_setting(name: str, value: Any, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise ConfigurationError(name, f"expected a positive number, got {value!r}",
                                 f"set {name} to a number above zero")
    return value


@dataclass(frozen=True)
class DistributorConfig:
    """The distributor's resolved settings."""

    routes: RouteTable
    hosts: tuple[HostSpec, ...]
    prefix: str = "asgi"
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
            _positive_setting(name, getattr(self, name))
        for name in ("inline_body", "max_chunk", "window", "queue_capacity", "retry_after"):
            _positive_setting(name, getattr(self, name), integer=True)
        status = self.no_worker_status
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ConfigurationError("no_worker_status", f"expected an HTTP error status, got "
                                     f"{status!r}", "use e.g. 503 or 504")
