"""The channel layer's settings, checked once into a frozen ``LayerConfig``.

The channel layer's keyword arguments are exactly its ``CHANNEL_LAYERS`` ``CONFIG`` keys, with the
same names as channels_redis so that a project can switch by changing ``BACKEND``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError
from ..protocol.keys import valid_prefix
from .checks import checked, field_defaults, positive
from .hosts import HostSpec, parse_hosts

__all__ = ["MAX_MESSAGE_SIZE", "LayerConfig", "key_prefix"]

#: The default of ``max_message_size``, in bytes (64 MiB). channels_redis has no limit of its
#: own: what is too large for Redis fails there (``proto-max-bulk-len``, 512 MB by default),
#: once written, naming no setting. 64 MiB is 64 times the 1 MB the Channels spec asks every
#: layer to carry, holds a WebSocket message of the 16 MiB the package's server accepts by
#: default even once Fernet-encrypted (base64: about 21 MiB), stays 8 times below Redis' limit,
#: and bounds the memory one send takes (a message is copied several times on its way).
MAX_MESSAGE_SIZE = 64 * 1024 * 1024


def _capacities(value: Any) -> tuple[tuple[re.Pattern[str], int], ...]:
    import fnmatch

    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigurationError("channel_capacity", f"expected a dict, got {value!r}",
                                 "map glob patterns or compiled regexes to capacities")
    compiled = []
    for pattern, capacity in value.items():
        positive("channel_capacity", capacity, "capacities are whole numbers of messages above "
                 "zero, e.g. {'http.*': 100}", integer=True, name=f"the capacity of {pattern!r}")
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
    max_message_size: int = MAX_MESSAGE_SIZE

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> LayerConfig:
        # Each setting as given, else its field's default. random_prefix_length: channels_redis'
        # setting, accepted so that a CONFIG moves as it is.
        given = {**field_defaults(cls), **kwargs}
        known = {"hosts", "random_prefix_length", *field_defaults(cls)}
        for key in kwargs:
            if key not in known:
                raise ConfigurationError(
                    key, "is not a setting of RedisChannelLayer",
                    f"remove it from CONFIG; the settings are {sorted(known)}",
                )
        return cls(
            hosts=parse_hosts(kwargs.get("hosts")),
            prefix=key_prefix(given["prefix"]),
            expiry=float(positive("expiry", given["expiry"], "give seconds, e.g. 60")),
            group_expiry=float(positive("group_expiry", given["group_expiry"],
                                        "give seconds, e.g. 86400")),
            capacity=positive("capacity", given["capacity"],
                              "give a whole number, e.g. 100", integer=True),
            channel_capacity=_capacities(kwargs.get("channel_capacity")),
            symmetric_encryption_keys=_keys(kwargs.get("symmetric_encryption_keys")),
            serializer_format=checked("serializer_format",
                                      given["serializer_format"], str,
                                      "use 'msgpack' or 'json'"),
            retry_window=float(positive("retry_window", given["retry_window"],
                                        "give seconds, e.g. 5")),
            max_message_size=positive(
                "max_message_size", given["max_message_size"],
                f"give a size in bytes, e.g. {MAX_MESSAGE_SIZE} (64 MiB), below the "
                "proto-max-bulk-len of your Redis (512 MB unless configured otherwise)",
                integer=True),
        )

    def capacity_of(self, channel: str) -> int:
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity


def key_prefix(value: Any) -> str:
    """The ``prefix`` setting, checked: every key of the package starts with it."""
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
        checked("symmetric_encryption_keys", key, (str, bytes), "keys are str or bytes")
    return tuple(value)
