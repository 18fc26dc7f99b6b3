"""Settings and keyword arguments -> frozen, validated configuration objects, in one place.

The channel layer's keyword arguments are exactly its ``CHANNEL_LAYERS`` ``CONFIG`` keys, with the
same names as channels_redis so that a project can switch by changing ``BACKEND``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from .exceptions import ConfigurationError
from .protocol.keys import valid_prefix

__all__ = ["HostSpec", "LayerConfig", "parse_hosts"]

DEFAULT_URL = "redis://localhost:6379"
_HOSTS_FIX = (
    "give a list such as ['redis://localhost:6379/0'], [('localhost', 6379)], "
    "[{'address': 'rediss://user:pass@host:6380'}] or "
    "[{'sentinels': [('host', 26379)], 'master_name': 'mymaster'}]"
)


@dataclass(frozen=True)
class HostSpec:
    """Where one Redis server (or one Sentinel-managed master) is, and how to log in."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    path: str | None = None  # unix socket
    ssl_context: ssl.SSLContext | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    sentinel_kwargs: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout: float = 5.0

    def describe(self) -> str:
        if self.sentinels:
            return f"sentinel master {self.master_name!r} via {list(self.sentinels)}"
        if self.path:
            return f"unix:{self.path}"
        return f"{'rediss' if self.ssl_context else 'redis'}://{self.host}:{self.port}/{self.db}"


def _ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    reqs = options.get("ssl_cert_reqs", "required")
    if reqs in (None, "none", ssl.CERT_NONE):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_check_hostname") is False:
        context.check_hostname = False
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return context


def _from_url(url: str, extra: Mapping[str, Any]) -> HostSpec:
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            "hosts", f"{url!r} is not a redis://, rediss:// or unix:// URL", _HOSTS_FIX
        )
    query = dict(part.split("=", 1) for part in parsed.query.split("&") if "=" in part)
    db_text = query.get("db") or (parsed.path.strip("/") if parsed.scheme != "unix" else "0")
    try:
        db = int(db_text or extra.get("db", 0))
    except ValueError:
        raise ConfigurationError("hosts", f"database {db_text!r} in {url!r} is not a number",
                                 "use redis://host:port/DB with a number") from None
    options = {**query, **extra}
    return HostSpec(
        host=parsed.hostname or "localhost",
        port=parsed.port or 6379,
        db=db,
        username=unquote(parsed.username) if parsed.username else extra.get("username"),
        password=unquote(parsed.password) if parsed.password else extra.get("password"),
        path=parsed.path if parsed.scheme == "unix" else None,
        ssl_context=_ssl_context(options) if parsed.scheme == "rediss" else None,
        connect_timeout=float(extra.get("socket_connect_timeout", 5.0)),
    )


def _from_dict(spec: Mapping[str, Any]) -> HostSpec:
    spec = dict(spec)
    if "sentinels" in spec:
        return _sentinel_spec(spec)
    address = spec.pop("address", None)
    if isinstance(address, str):
        return _from_url(address, spec)
    if isinstance(address, (tuple, list)):
        spec["host"], spec["port"] = address
    ssl_on = bool(spec.pop("ssl", False))
    return HostSpec(
        host=str(spec.get("host", "localhost")),
        port=int(spec.get("port", 6379)),
        db=int(spec.get("db", 0)),
        username=spec.get("username"),
        password=spec.get("password"),
        path=spec.get("unix_socket_path") or spec.get("path"),
        ssl_context=spec.get("ssl_context") or (_ssl_context(spec) if ssl_on else None),
        connect_timeout=float(spec.get("socket_connect_timeout", 5.0)),
    )


def _sentinel_spec(spec: dict[str, Any]) -> HostSpec:
    sentinels = spec.pop("sentinels")
    master = spec.pop("master_name", None)
    if not master or not isinstance(master, str):
        raise ConfigurationError(
            "hosts", "a Sentinel host needs 'master_name'", "add 'master_name': 'mymaster'"
        )
    try:
        pairs = tuple((str(h), int(p)) for h, p in sentinels)
    except (TypeError, ValueError):
        raise ConfigurationError(
            "hosts", f"'sentinels' must be (host, port) pairs, got {sentinels!r}", _HOSTS_FIX
        ) from None
    base = _from_dict({k: v for k, v in spec.items() if k != "sentinel_kwargs"})
    return HostSpec(
        db=base.db, username=base.username, password=base.password,
        ssl_context=base.ssl_context, sentinels=pairs, master_name=master,
        sentinel_kwargs=dict(spec.get("sentinel_kwargs") or {}),
        connect_timeout=base.connect_timeout,
    )


def parse_hosts(hosts: Any) -> tuple[HostSpec, ...]:
    """Every form channels_redis accepts for ``hosts``, as HostSpec objects."""
    if hosts is None or (isinstance(hosts, Sequence) and not isinstance(hosts, (str, bytes))
                         and len(hosts) == 0):
        return (_from_url(DEFAULT_URL, {}),)
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise ConfigurationError(
            "hosts", f"expected a list of hosts, got {type(hosts).__name__} {hosts!r}", _HOSTS_FIX
        )
    result = []
    for item in hosts:
        if isinstance(item, str):
            result.append(_from_url(item, {}))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            result.append(HostSpec(host=str(item[0]), port=int(item[1])))
        elif isinstance(item, Mapping):
            result.append(_from_dict(item))
        else:
            raise ConfigurationError("hosts", f"cannot read host {item!r}", _HOSTS_FIX)
    return tuple(result)


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
