"""``Forwarding``: one side of one forwarded connection, strict about what may happen when.

Sans-I/O, modelled on h11's ``_state.py``: a machine takes events (what the other side sent,
what Redis answered, what the client or the application did, a timer that ran out) and gives
back the actions its shell must carry out. Every (state, event) pair of its side is a row or an
ignore row with its reason; any other pair raises ``UnexpectedEvent`` (a defect: the shell logs
it and fails the connection with ``Event.BROKEN``). It reads no clock: timers are events too
(``due(now)`` with the caller's clock).

Flow-control credit (``credit``, ``grant``, ``spend``) is a counter beside the state, as h11
keeps ``keep_alive`` beside its table: a data event leaves only while the window has room.
"""

from __future__ import annotations

from channels_distributed.exceptions import ProtocolError

from .edge import EDGE_TABLE
from .names import Action, Event, Output, Side, State
from .table import Compiled
from .worker import RUNNING, WORKER_TABLE

__all__ = ["TABLES", "Forwarding", "UnexpectedEvent", "stray_actions"]

TABLES = {Side.EDGE: EDGE_TABLE, Side.WORKER: WORKER_TABLE}
# Returned by a lookup of a pair the table does not name (compared by identity).
_UNLISTED: Compiled = (State.CLOSED, (), None, False)

#: What a process does with a control message for a connection it no longer has: an accept
#: that came too late, or a probe of a connection that ended here, is answered with a reset (the
#: other side's application would otherwise wait for a client that is gone).
_STRAYS = {Side.EDGE: {"cd.accept": (Action.SEND_RESET,), "cd.probe": (Action.SEND_RESET,)},
           Side.WORKER: {"cd.probe": (Action.SEND_RESET,)}}


def stray_actions(side: Side, message_type: str) -> tuple[Action, ...]:
    """The actions for a message of ``message_type`` for a connection ``side`` forgot."""
    return _STRAYS[side].get(message_type, ())


class UnexpectedEvent(ProtocolError):
    """An event its machine's state has no row for: a defect of the package."""

    def __init__(self, side: Side, state: State, event: Event) -> None:
        super().__init__(f"the {side.value} machine has no row for {event.value!r} in state "
                         f"{state.value!r}")
        self.side, self.state, self.event = side, state, event


class Forwarding:
    """One side of one forwarded connection: its state, its timer and its credit."""

    __slots__ = ("accept_timeout", "credit", "late_timeout", "output", "rows", "side", "state",
                 "table", "timer")

    def __init__(self, side: Side, window: int, accept_timeout: float = 0.0,
                 late_timeout: float = 0.0) -> None:
        table = self.table = TABLES[side]
        self.side = side
        self.rows = table.compiled
        self.state = State.IDLE
        #: What events posted now do: wait, leave, leave with the acknowledgement, or vanish.
        self.output: Output = table.output[State.IDLE]
        self.credit = window  # data events this side may still send
        self.timer: float | None = None  # when the running timer runs out (caller's clock)
        self.accept_timeout = accept_timeout
        self.late_timeout = late_timeout

    def handle(self, event: Event, now: float = 0.0) -> tuple[Action, ...]:
        """Take ``event`` (at ``now``, on the caller's clock); the actions, in order."""
        row = self.rows[self.state].get(event, _UNLISTED)
        if row is None:
            return ()  # an ignore row
        if row is _UNLISTED:
            raise UnexpectedEvent(self.side, self.state, event)
        state, actions, timer, runs_on = row
        if state is not self.state:
            self.state = state
            self.output = self.table.output[state]
            if runs_on:
                pass  # the same timer runs on (giving up, then waiting for a late accept)
            elif timer is None:
                self.timer = None
            else:
                self.timer = now + (self.accept_timeout if timer == "accept"
                                    else self.late_timeout)
        return actions

    @property
    def waiting(self) -> bool:
        """Whether a timer runs (the edge waits for a worker): the sweeper ticks it."""
        return self.state in self.table.timers

    @property
    def runs_app(self) -> bool:
        """Whether the worker's application runs in this state."""
        return self.state in RUNNING

    def expired(self, now: float) -> bool:
        """Whether the running timer ran out by ``now``: then ``DEADLINE`` is the next event."""
        return self.timer is not None and self.timer <= now

    def due(self, now: float) -> tuple[Action, ...]:
        """``handle(DEADLINE)`` if the running timer ran out by ``now``, else nothing."""
        return self.handle(Event.DEADLINE, now) if self.expired(now) else ()

    # Flow control ------------------------------------------------------------------------------
    def grant(self, count: int) -> None:
        """The other side consumed ``count`` data events (``cd.ack``)."""
        self.credit += count

    def spend(self) -> bool:
        """Take one unit of credit for a data event; False while the window is exhausted."""
        if self.credit <= 0:
            return False
        self.credit -= 1
        return True
