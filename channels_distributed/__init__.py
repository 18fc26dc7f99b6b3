"""channels-distributed: a Redis channel layer, a path distributor and workers for Channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# First: it may switch the compiled modules back to their Python sources before any loads.
from channels_distributed import compiled  # noqa: F401

from .version import __version__

__all__ = [
    "ChannelFull",
    "Message",
    "Node",
    "PathDistributor",
    "RedisChannelLayer",
    "ReplyChannel",
    "__version__",
    "create_path_distributor",
]

# Imported lazily so `import channels_distributed` stays cheap and the sans-I/O parts
# never pull in redis or django.
_LAZY = {
    "RedisChannelLayer": "channels_distributed.layer",
    "Message": "channels_distributed.legacy.message",
    "ReplyChannel": "channels_distributed.legacy.message",
    "ChannelFull": "channels_distributed.exceptions",
    "create_path_distributor": "channels_distributed.distributor",
    "PathDistributor": "channels_distributed.distributor",
    "Node": "channels_distributed.worker",
}

if TYPE_CHECKING:  # pragma: no cover
    from .distributor import PathDistributor, create_path_distributor
    from .exceptions import ChannelFull
    from .layer import RedisChannelLayer
    from .legacy.message import Message, ReplyChannel
    from .worker import Node


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'channels_distributed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
