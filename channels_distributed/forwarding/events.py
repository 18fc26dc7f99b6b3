"""What Redis's answers and the other side's control messages mean to a worker's or an edge's
machine: decoded here, once."""

from __future__ import annotations

from ..protocol.envelope import ACCEPT, EXPIRED, RESET
from ..protocol.forwarding import Event
from ..transport.scripts import FULL, GIVEN_UP, OURS, REAPED

__all__ = ["ACK_EVENTS", "CONTROL", "NOT_ACKED"]

#: An acknowledgement's answer (``transport.scripts``) as the worker machine's event.
ACK_EVENTS = {OURS: Event.ACKED, REAPED: Event.REAPED, GIVEN_UP: Event.GIVEN_UP,
              FULL: Event.FULL}
#: The other side's control messages, as the machine's events.
CONTROL = {ACCEPT: Event.ACCEPT, RESET: Event.RESET, EXPIRED: Event.EXPIRED}
#: Why a connection's first output did not go out, by the acknowledgement's answer.
NOT_ACKED = {
    Event.REAPED: "{} was given back to its queue",
    Event.GIVEN_UP: "{} was given up by its edge at its deadline",
    Event.FULL: "the inbox of the other side of {} is full",
}
