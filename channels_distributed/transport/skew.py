"""How far this machine's clock is from a Redis server's, and how much skew deadlines tolerate.

Deadlines are wall-clock times in unix ms, set by one machine and read by another: the edge
queues a request with the deadline ``now + worker_timeout`` (5 s by default) by its own clock,
and a worker on another machine drops it unrun when its own clock says the deadline passed. A
worker whose clock runs ``d`` seconds ahead of the edge's gives every request ``d`` seconds less
to be taken, and drops all of them unrun (the clients get 503) once ``d`` reaches
``worker_timeout``; one that runs behind takes requests the edge gave up already (their
acknowledgement fails, so they never run, but the worker's slot was spent on them). Messages of
the channel layer likewise carry an expiry (``expiry``, 60 s) that the receiver checks.

Machines are compared here with Redis, the one clock they all see: two machines each within
``s`` of Redis may be ``2 s`` apart. Hence the limits (``limits()``): an error above a quarter
of the window (two such machines skewed in opposite directions lose half of every request's
time to be taken, and a busy route's requests wait longest), a warning above 0.5 s (NTP keeps
clocks within milliseconds; half a second means a clock is not synchronised at all, and such a
clock drifts by a second or more a day).

A sample is Redis' ``TIME`` against the middle of the local clock's readings before and after
it: uncertain by half the round trip. Only what is certain counts (the best of a few samples),
so a slow link is never taken for a skewed clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import ReplyError
from .eviction import parse_info
from .refusals import denied
from .resp import RespLink

__all__ = ["WARN_ABOVE", "Sample", "judge", "limits", "measure"]

WARN_ABOVE = 0.5  # seconds
_SAMPLES = 3
_TIMEOUT = 2.0


@dataclass(frozen=True)
class Sample:
    """One reading of Redis' clock, between two readings of the local one (unix seconds)."""

    sent: float
    received: float
    server: float

    @property
    def offset(self) -> float:
        """How far Redis' clock is ahead of the local one (negative: behind)."""
        return self.server - (self.sent + self.received) / 2

    @property
    def uncertainty(self) -> float:
        return max(self.received - self.sent, 0.0) / 2


def limits(window: float) -> tuple[float, float]:
    """(warn above, error above), in seconds, for deadlines ``window`` seconds ahead."""
    error = window / 4
    return min(WARN_ABOVE, error), error


def judge(samples: Sequence[Sample], window: float) -> tuple[str, float, Sample] | None:
    """("warning" or "error", the skew that is certain, the sample it comes from) when the
    skew is beyond ``limits(window)``; None when it is within, or there is no sample."""
    if not samples:
        return None
    best = min(samples, key=lambda sample: sample.uncertainty)
    certain = abs(best.offset) - best.uncertainty
    warn, error = limits(window)
    if certain > error:
        return "error", certain, best
    if certain > warn:
        return "warning", certain, best
    return None


async def measure(link: RespLink, clock: Callable[[], float],
                  count: int = _SAMPLES) -> list[Sample]:
    """Samples of Redis' clock: ``TIME``, or ``server_time_usec`` of ``INFO server`` where
    the ACL refuses TIME (ReplyError when it refuses both)."""
    command: tuple[str, ...] = ("TIME",)
    samples: list[Sample] = []
    while len(samples) < count:
        sent = clock()
        try:
            reply = await asyncio.wait_for(link.call(*command), _TIMEOUT)
        except ReplyError as exc:
            if command != ("TIME",) or not denied(str(exc)):
                raise
            command = ("INFO", "server")
            continue
        samples.append(Sample(sent, clock(), _seconds(reply)))
    return samples


def _seconds(reply: Any) -> float:
    if isinstance(reply, list):  # TIME: [seconds, microseconds]
        return int(reply[0]) + int(reply[1]) / 1e6
    fields = parse_info(reply.decode(errors="replace") if isinstance(reply, bytes) else reply)
    try:
        return int(fields["server_time_usec"]) / 1e6
    except (KeyError, ValueError):
        raise ReplyError("INFO server has no server_time_usec (Redis 6.2 or later has it)") \
            from None
