"""msgpack packing with one reused ``Packer`` per thread.

``msgpack.packb`` builds a new ``Packer`` (and its buffer) for every call; reusing one halves the
cost of packing a request or an event batch, which happens several times per forwarded request.
One per thread, because a packer's buffer is not safe to share; dropped after a large message,
so a thread does not keep a multi-megabyte buffer for the rest of its life.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

__all__ = ["pack"]

_KEEP_BELOW = 1 << 20  # a packer that packed more than this is not kept: its buffer grew
_local = threading.local()


def pack(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)``, without building a packer each time."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    try:
        data: bytes = packer.pack(value)
    except BaseException:
        _local.packer = None  # whatever it holds now (a half-packed value, a grown buffer)
        raise
    if len(data) > _KEEP_BELOW:
        _local.packer = None
    return data
