"""What the channel layer and the Redis transport count once metrics are on.

One ``LayerMeter`` per process (``metrics.LAYER``); the layer (``layer.py``) and the transport
(``transport/resp.py``, ``topology.py``, ``refusals.py``) call it where a message is sent or
received and where a connection to Redis fails, is lost or is opened again. Sends and receives
are counted in plain integers and added to their metrics at each flush (``pending.py``); the
rare events go to their metrics at once.
"""

from __future__ import annotations

from .families import (
    LAYER_FULL,
    LAYER_GROUP_MEMBERS,
    LAYER_RECEIVES,
    LAYER_SENDS,
    MEMBER_BUCKETS,
    REDIS_ERRORS,
    REDIS_RECONNECTS,
)
from .pending import PendingCounter, PendingHistogram, on_flush

__all__ = ["REDIS_ERROR_KINDS", "LayerMeter"]

#: The kinds of ``channels_distributed_redis_errors_total``.
REDIS_ERROR_KINDS = ("connect", "lost", "refused")


class LayerMeter:
    """The layer's and the Redis transport's counters in this process."""

    def __init__(self) -> None:
        self._sends = PendingCounter(LAYER_SENDS)
        self._receives = PendingCounter(LAYER_RECEIVES)
        self._members = PendingHistogram(LAYER_GROUP_MEMBERS, MEMBER_BUCKETS)
        self._full = {op: LAYER_FULL.labels(op) for op in ("send", "group_send")}
        self._errors = {kind: REDIS_ERRORS.labels(kind) for kind in REDIS_ERROR_KINDS}
        on_flush(self.flush)

    def sent(self) -> None:
        self._sends.count += 1

    def received(self) -> None:
        self._receives.count += 1

    def group_sent(self, members: int) -> None:
        self._members.observe(members)

    def full(self, operation: str, count: int = 1) -> None:
        """``count`` messages of ``operation`` (send, group_send) refused by a full channel."""
        self._full[operation].inc(count)

    def redis_error(self, kind: str) -> None:
        """One of ``REDIS_ERROR_KINDS``."""
        self._errors[kind].inc()

    def reconnected(self) -> None:
        REDIS_RECONNECTS.inc()

    def flush(self) -> None:
        self._sends.flush()
        self._receives.flush()
        self._members.flush()
