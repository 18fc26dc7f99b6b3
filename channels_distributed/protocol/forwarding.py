"""The forwarded connection's lifecycle, one side at a time, as one table of transitions.

Sans-I/O, modelled on h11's ``_state.py``: a ``Forwarding`` machine takes events (what the other
side sent, what Redis answered, what the client or the application did, a timer that ran out)
and gives back the new state and the actions its owner must carry out. It does no I/O and reads
no clock: timers are events too (``due(now)`` with the caller's clock), so a test drives both
sides in memory, through a fake link, in microseconds.

The two sides (docs/design.rst, "The forwarding protocol" and "The state machines"):

* the **edge** queues a ``connect`` request (``QUEUED``), waits for a worker's ``cd.accept``
  until the deadline, then withdraws the request from its queue, or, when a worker took it
  already, marks it given up (``GIVING_UP``) and waits a little longer for that worker's accept
  (``LATE``); once accepted, events flow (``OPEN``) until the response is complete (``DONE``)
  or the connection is lost (``LOST``), and it ends (``CLOSED``);
* the **worker** takes the request (``TAKEN``, its ``cd.accept`` held), acknowledges it and runs
  the application (``OPEN``) -- or runs it at once and lets its first output carry the
  acknowledgement (``ACKING``) -- and ends with ``cd.close`` (``CLOSED``). A request taken after
  its deadline, or given up by the edge meanwhile, is answered ``cd.expired`` and never run.

Flow-control credit (``credit``, ``grant``, ``spend``) is a counter beside the state, as h11
keeps ``keep_alive`` beside its table: a data event leaves only while the window has room, and
the other side's ``cd.ack`` refills it.

An event that a state's row does not name is a late arrival of a race (an acknowledgement's
answer after the application returned, a reset after the response completed) and is ignored:
the state stays, and there is nothing to do.
"""

from __future__ import annotations

from channels_distributed.exceptions import ClientGone, NoWorker, PeerLost, Unserved, WorkerSilent

__all__ = [
    "EDGE",
    "FAILURES",
    "TABLE",
    "TIMERS",
    "WORKER",
    "Forwarding",
    "transition",
]

# Sides -------------------------------------------------------------------------------------
EDGE = "edge"
WORKER = "worker"

# States ------------------------------------------------------------------------------------
IDLE = "idle"  # nothing sent or taken yet
QUEUED = "queued"  # edge: the connect request is queued; waiting for a worker's accept
GIVING_UP = "giving-up"  # edge: deadline passed; withdrawing the request or marking it given up
LATE = "late"  # edge: a worker took it by the deadline; its accept may still come
TAKEN = "taken"  # worker: request taken, not yet acknowledged; nothing goes out
ACKING = "acking"  # worker: the application runs; its first output acknowledges the request
OPEN = "open"  # events flow both ways
DONE = "done"  # edge: the response is complete; the worker needs nothing more
LOST = "lost"  # the other side (or the client, or Redis) is gone; the owner winds down
CLOSED = "closed"  # over: the connection is forgotten

# Events ------------------------------------------------------------------------------------
# Sent by the other side (their names are the envelope's message types).
ACCEPT = "cd.accept"
EXPIRED = "cd.expired"
RESET = "cd.reset"
PROBE = "cd.probe"  # answered by the shell while it has the connection; a reset once it has not
# Local: the owner, Redis's answers, timers.
CONNECT = "connect"  # edge: the connection arrived and has a route key
TAKE = "take"  # worker: a request taken before its deadline, to acknowledge before it runs
DEADLINE = "deadline"  # a timer ran out (edge) / a request taken after its deadline (worker)
WITHDRAWN = "withdrawn"  # edge: the give-up script removed the request from its queue
TAKEN_BY_WORKER = "taken-by-worker"  # edge: the give-up script found a worker had it
ACKED = "acked"  # worker: the acknowledgement succeeded (the request is ours)
OPTIMISTIC = "optimistic"  # worker: taken in time, run before its acknowledgement
GIVEN_UP = "given-up"  # worker: the edge gave the request up before it was acknowledged
REAPED = "reaped"  # worker: a reaper gave the request back to its queue
FULL = "full"  # worker: the edge's inbox is full
FAILED = "failed"  # Redis refused or is unreachable: a push or an acknowledgement failed
PEER_GONE = "peer-gone"  # the other process went away (presence)
CLIENT_GONE = "client-gone"  # the client went away (edge) / the application was told so (worker)
COMPLETE = "complete"  # edge: the response went to the client in full
GAP = "gap"  # entries from the other side were lost (Redis evicted them): the stream is broken
END = "end"  # the owner is done with the connection (relay returned, application returned)

# Actions -----------------------------------------------------------------------------------
PUSH_CONNECT = "push-connect"  # queue the connect request on its route key
GIVE_UP = "give-up"  # run the give-up script: withdraw the request, or mark it given up
WITHDRAW = "withdraw"  # withdraw the request in the background (nobody waits for it)
ACCEPTED = "accepted"  # note the worker's inbox and id; the wait for a worker ends
SEND_ACCEPT = "send-accept"  # post this worker's cd.accept (held until released)
ACK_WITH_OUTPUT = "ack-with-output"  # the first flush acknowledges the request atomically
RUN_APP = "run-app"  # run the application
RELEASE = "release"  # held output may leave now
WATCH = "watch"  # watch the other process's presence
UNWATCH = "unwatch"
FINISH_OUTPUT = "finish-output"  # drop queued output; nothing more goes out
SEND_FINAL = "send-final"  # post the owner's last word: the edge's disconnect, the worker's close
SEND_RESET = "send-reset"  # tell a worker that accepted late that the connection is gone
SEND_EXPIRED = "send-expired"  # tell the edge the request will never run
ABORT = "abort"  # tell the other side the stream is broken (cd.reset), and send nothing more
DROP = "drop"  # remove the request from the processing list, unrun
FAIL_NO_WORKER = "fail-no-worker"  # the edge answers 503 / 1013
FAIL_UNSERVED = "fail-unserved"  # the same, said by the worker that took it too late
FAIL_SILENT = "fail-silent"  # a worker took it and never answered: 502 / 1011
FAIL_LOST = "fail-lost"  # the other side, or Redis, is gone: 502 / 1011, or the app is told
FAIL_CLIENT_GONE = "fail-client-gone"  # the edge's relay ends quietly
CLOSE_PEER = "close-peer"  # flush what is queued, forget the connection

#: What each failure action raises in whoever waits on the connection, and its message.
FAILURES: dict[str, tuple[type[PeerLost], str]] = {
    FAIL_NO_WORKER: (NoWorker, "no worker accepted {} in time"),
    FAIL_UNSERVED: (Unserved, "{} reached a worker after its deadline"),
    FAIL_SILENT: (WorkerSilent, "the worker that took {} never answered"),
    FAIL_CLIENT_GONE: (ClientGone, "the client of {} went away"),
    FAIL_LOST: (PeerLost, "the other side of {} is gone"),
}

_ACCEPTED = (ACCEPTED, RELEASE, WATCH)
_END = (SEND_FINAL, UNWATCH, CLOSE_PEER)

#: (side, state, event) -> (next state, actions in order).
TABLE: dict[tuple[str, str, str], tuple[str, tuple[str, ...]]] = {
    # The edge ---------------------------------------------------------------------------------
    (EDGE, IDLE, CONNECT): (QUEUED, (PUSH_CONNECT,)),
    (EDGE, QUEUED, ACCEPT): (OPEN, _ACCEPTED),
    (EDGE, QUEUED, EXPIRED): (CLOSED, (FAIL_UNSERVED,)),  # in no list any more: no withdraw
    (EDGE, QUEUED, DEADLINE): (GIVING_UP, (GIVE_UP,)),
    (EDGE, QUEUED, FAILED): (CLOSED, (FAIL_LOST, WITHDRAW)),
    (EDGE, QUEUED, RESET): (CLOSED, (FAIL_LOST, WITHDRAW)),
    (EDGE, QUEUED, CLIENT_GONE): (CLOSED, (WITHDRAW,)),
    # A worker took it (its events arrive) but its accept was lost: it runs there, unrelayed.
    (EDGE, QUEUED, GAP): (CLOSED, (FAIL_SILENT,)),
    (EDGE, GIVING_UP, WITHDRAWN): (CLOSED, (FAIL_NO_WORKER,)),
    (EDGE, GIVING_UP, TAKEN_BY_WORKER): (LATE, ()),
    (EDGE, GIVING_UP, ACCEPT): (OPEN, _ACCEPTED),  # accepted while the script ran
    (EDGE, GIVING_UP, EXPIRED): (CLOSED, (FAIL_UNSERVED,)),
    (EDGE, GIVING_UP, FAILED): (CLOSED, (FAIL_LOST,)),
    (EDGE, GIVING_UP, RESET): (CLOSED, (FAIL_LOST,)),
    (EDGE, GIVING_UP, CLIENT_GONE): (CLOSED, ()),  # the script under way withdraws it
    (EDGE, GIVING_UP, GAP): (CLOSED, (FAIL_SILENT,)),
    (EDGE, LATE, ACCEPT): (OPEN, _ACCEPTED),
    (EDGE, LATE, EXPIRED): (CLOSED, (FAIL_UNSERVED,)),
    (EDGE, LATE, DEADLINE): (CLOSED, (FAIL_SILENT,)),
    (EDGE, LATE, FAILED): (CLOSED, (FAIL_LOST,)),
    (EDGE, LATE, RESET): (CLOSED, (FAIL_LOST,)),
    (EDGE, LATE, CLIENT_GONE): (CLOSED, ()),  # given up already: it can never run
    (EDGE, LATE, GAP): (CLOSED, (FAIL_SILENT,)),
    (EDGE, OPEN, COMPLETE): (DONE, (FINISH_OUTPUT,)),
    (EDGE, OPEN, EXPIRED): (OPEN, ()),  # never fails a connection a worker has
    (EDGE, OPEN, RESET): (LOST, (FINISH_OUTPUT, FAIL_LOST)),
    (EDGE, OPEN, PEER_GONE): (LOST, (FAIL_LOST,)),
    (EDGE, OPEN, FAILED): (LOST, (FAIL_LOST,)),
    (EDGE, OPEN, CLIENT_GONE): (LOST, (FAIL_CLIENT_GONE,)),
    # Never a short body delivered as whole: the client gets 502 or a cut connection, the
    # worker's application is told.
    (EDGE, OPEN, GAP): (LOST, (ABORT, FAIL_LOST)),
    (EDGE, OPEN, END): (CLOSED, _END),  # ended mid-exchange: the worker's app is told
    (EDGE, DONE, END): (CLOSED, (UNWATCH, CLOSE_PEER)),
    (EDGE, LOST, END): (CLOSED, (UNWATCH, CLOSE_PEER)),
    (EDGE, CLOSED, END): (CLOSED, (CLOSE_PEER,)),
    # An accept for a connection this edge no longer has: that worker's application would
    # otherwise wait for its client forever.
    (EDGE, CLOSED, ACCEPT): (CLOSED, (SEND_RESET,)),
    # A worker asking about a connection this edge no longer has: it is gone.
    (EDGE, CLOSED, PROBE): (CLOSED, (SEND_RESET,)),
    # The worker -------------------------------------------------------------------------------
    (WORKER, IDLE, DEADLINE): (CLOSED, (DROP, SEND_EXPIRED)),  # never run after its deadline
    (WORKER, IDLE, TAKE): (TAKEN, (SEND_ACCEPT,)),
    # Idempotent HTTP with its whole body: run at once, the first output acknowledges it.
    (WORKER, IDLE, OPTIMISTIC): (ACKING, (SEND_ACCEPT, ACK_WITH_OUTPUT, RELEASE, WATCH, RUN_APP)),
    (WORKER, TAKEN, ACKED): (OPEN, (RELEASE, WATCH, RUN_APP)),
    (WORKER, TAKEN, GIVEN_UP): (CLOSED, (SEND_EXPIRED, CLOSE_PEER)),
    (WORKER, TAKEN, REAPED): (CLOSED, (CLOSE_PEER,)),  # another worker runs it
    (WORKER, TAKEN, FAILED): (CLOSED, (CLOSE_PEER,)),  # as reaped: a reaper gives it back
    (WORKER, ACKING, ACKED): (OPEN, (RELEASE,)),
    (WORKER, ACKING, REAPED): (LOST, (FINISH_OUTPUT, FAIL_LOST)),  # never delivered
    # The edge gave it up at its deadline: nothing was delivered; it answers 503 at once.
    (WORKER, ACKING, GIVEN_UP): (LOST, (FINISH_OUTPUT, SEND_EXPIRED, FAIL_LOST)),
    (WORKER, ACKING, GAP): (LOST, (ABORT, FAIL_LOST)),
    (WORKER, ACKING, FULL): (LOST, (FAIL_LOST,)),
    (WORKER, ACKING, FAILED): (LOST, (FAIL_LOST,)),
    (WORKER, ACKING, RESET): (LOST, (FINISH_OUTPUT, FAIL_LOST)),
    (WORKER, ACKING, PEER_GONE): (LOST, (FAIL_LOST,)),
    (WORKER, ACKING, CLIENT_GONE): (LOST, (FAIL_LOST,)),
    (WORKER, ACKING, END): (CLOSED, _END),
    (WORKER, OPEN, RESET): (LOST, (FINISH_OUTPUT, FAIL_LOST)),
    (WORKER, OPEN, PEER_GONE): (LOST, (FAIL_LOST,)),
    (WORKER, OPEN, FAILED): (LOST, (FAIL_LOST,)),
    (WORKER, OPEN, CLIENT_GONE): (LOST, (FAIL_LOST,)),
    (WORKER, OPEN, GAP): (LOST, (ABORT, FAIL_LOST)),
    (WORKER, OPEN, END): (CLOSED, _END),
    (WORKER, LOST, ACKED): (LOST, (RELEASE,)),  # the close may still go out
    (WORKER, LOST, REAPED): (LOST, (FINISH_OUTPUT,)),
    (WORKER, LOST, GIVEN_UP): (LOST, (FINISH_OUTPUT, SEND_EXPIRED)),
    (WORKER, LOST, END): (CLOSED, _END),
    # The application returned before its first output's acknowledgement was answered: what it
    # sent since still goes out, or is dropped if the request was given back meanwhile.
    (WORKER, CLOSED, ACKED): (CLOSED, (RELEASE,)),
    (WORKER, CLOSED, REAPED): (CLOSED, (FINISH_OUTPUT,)),
    (WORKER, CLOSED, GIVEN_UP): (CLOSED, (FINISH_OUTPUT, SEND_EXPIRED)),
    (WORKER, CLOSED, PROBE): (CLOSED, (SEND_RESET,)),  # an edge asking about a finished one
}

#: (side, state) -> the timer running while in that state: "accept" (the request's deadline),
#: "late" (how long giving it up and then a late accept may take, together: ``redis_timeout``).
#: Moving between two states of the same timer keeps it running.
TIMERS = {(EDGE, QUEUED): "accept", (EDGE, GIVING_UP): "late", (EDGE, LATE): "late"}

_STATES = (IDLE, QUEUED, GIVING_UP, LATE, TAKEN, ACKING, OPEN, DONE, LOST, CLOSED)
# The table as the machine reads it, once per event of every request: side -> state -> event ->
# (next state, actions, the timer that entering the next state starts or None, whether that
# timer is the one running already, which runs on).
_ROWS: dict[str, dict[str, dict[str, tuple[str, tuple[str, ...], str | None, bool]]]] = {
    side: {state: {} for state in _STATES} for side in (EDGE, WORKER)}
for (_side, _state, _event), (_next, _actions) in TABLE.items():
    _timer = TIMERS.get((_side, _next))
    _ROWS[_side][_state][_event] = (_next, _actions, _timer,
                                    _timer is not None and TIMERS.get((_side, _state)) == _timer)


def transition(side: str, state: str, event: str) -> tuple[str, tuple[str, ...]]:
    """The row for ``event`` in ``state``: (next state, actions); (state, ()) when none."""
    row = TABLE.get((side, state, event))
    return (state, ()) if row is None else row


class Forwarding:
    """One side of one forwarded connection: its state, its timer and its credit.

    Not compiled: compiling it saved 1% of a forwarded request's instructions in the worker and
    2% in the edge (docs/development.rst), under the 5% a compiled module must gain.
    """

    __slots__ = ("accept_timeout", "credit", "late_timeout", "rows", "side", "state", "timer")

    def __init__(self, side: str, window: int, accept_timeout: float = 0.0,
                 late_timeout: float = 0.0) -> None:
        self.side = side
        self.rows = _ROWS[side]
        self.state = IDLE
        self.credit = window  # data events this side may still send
        self.timer: float | None = None  # when the running timer runs out (caller's clock)
        self.accept_timeout = accept_timeout
        self.late_timeout = late_timeout

    def handle(self, event: str, now: float = 0.0) -> tuple[str, ...]:
        """Take ``event`` (at ``now``, on the caller's clock); the actions, in order."""
        row = self.rows[self.state].get(event)
        if row is None:
            return ()
        state, actions, timer, runs_on = row
        if state != self.state:
            self.state = state
            if runs_on:
                pass
            elif timer is None:
                self.timer = None
            else:
                self.timer = now + (self.accept_timeout if timer == "accept"
                                    else self.late_timeout)
        return actions

    def expired(self, now: float) -> bool:
        """Whether the running timer ran out by ``now``: then ``DEADLINE`` is the next event."""
        return self.timer is not None and self.timer <= now

    def due(self, now: float) -> tuple[str, ...]:
        """``handle(DEADLINE)`` if the running timer ran out by ``now``, else nothing."""
        return self.handle(DEADLINE, now) if self.expired(now) else ()

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
