"""When a quiet stream of a forwarded connection is probed (``cd.probe``)."""

from __future__ import annotations

from ..transport.backoff import Backoff

__all__ = ["PROBE_LIMIT", "Probes"]

#: The first probe comes after the caller's interval, the next ones less often, up to this.
PROBE_LIMIT = 10.0


class Probes:
    """When a quiet stream is probed next: after ``first`` seconds, then at longer pauses (up to
    ``PROBE_LIMIT``), counted from the last probe, not from the last wake-up."""

    __slots__ = ("backoff", "due")

    def __init__(self, first: float, now: float) -> None:
        self.backoff = Backoff(first, PROBE_LIMIT)
        self.due = now + self.backoff.next()

    def next(self, now: float) -> None:
        self.due = now + self.backoff.next()
