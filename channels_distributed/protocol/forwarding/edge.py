"""The edge's machine: queue the request, wait for a worker's accept until the deadline, then
relay until the response is complete or something is lost.

At the deadline the request is withdrawn from its queue, or, when a worker took it already,
marked given up (``GIVING_UP``), and the edge waits a little longer for the accept of a worker
that acknowledged it in time (``LATE``): giving up and that wait share one ``redis_timeout``.
"""

from __future__ import annotations

from .names import Action, Event, Output, Side, State
from .table import Row, Rows, Table, ignore

__all__ = ["EDGE_EVENTS", "EDGE_STATES", "EDGE_TABLE"]

A, E, S = Action, Event, State

EDGE_STATES = (S.IDLE, S.QUEUED, S.GIVING_UP, S.LATE, S.OPEN, S.DONE, S.LOST, S.MUTED, S.CLOSED)
EDGE_EVENTS = (E.CONNECT, E.ACCEPT, E.EXPIRED, E.RESET, E.DEADLINE, E.WITHDRAWN,
               E.TAKEN_BY_WORKER, E.FAILED, E.PEER_GONE, E.CLIENT_GONE, E.COMPLETE, E.END, E.GAP,
               E.BROKEN)

_ACCEPTED = Row(S.OPEN, (A.ACCEPTED, A.FLUSH, A.WATCH))
_WAITING = (S.QUEUED, S.GIVING_UP, S.LATE)

_WAITING_ROWS: Rows = {
    (S.IDLE, E.CONNECT): Row(S.QUEUED, (A.PUSH_CONNECT,)),
    (S.IDLE, E.BROKEN): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.QUEUED, E.ACCEPT): _ACCEPTED,
    (S.QUEUED, E.EXPIRED): Row(S.CLOSED, (A.FAIL_UNSERVED,)),  # in no list: nothing to withdraw
    (S.QUEUED, E.DEADLINE): Row(S.GIVING_UP, (A.GIVE_UP,)),
    (S.QUEUED, E.FAILED): Row(S.CLOSED, (A.FAIL_LOST, A.WITHDRAW)),
    (S.QUEUED, E.RESET): Row(S.CLOSED, (A.FAIL_LOST, A.WITHDRAW)),
    (S.QUEUED, E.CLIENT_GONE): Row(S.CLOSED, (A.WITHDRAW,)),
    # A worker runs it (its events arrive), but its accept was lost: it may have run, so 502.
    (S.QUEUED, E.GAP): Row(S.CLOSED, (A.FAIL_SILENT,)),
    (S.QUEUED, E.BROKEN): Row(S.CLOSED, (A.FAIL_LOST, A.WITHDRAW)),
    (S.GIVING_UP, E.WITHDRAWN): Row(S.CLOSED, (A.FAIL_NO_WORKER,)),
    (S.GIVING_UP, E.TAKEN_BY_WORKER): Row(S.LATE),
    (S.GIVING_UP, E.ACCEPT): _ACCEPTED,  # accepted while the script ran
    (S.GIVING_UP, E.EXPIRED): Row(S.CLOSED, (A.FAIL_UNSERVED,)),
    (S.GIVING_UP, E.FAILED): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.GIVING_UP, E.RESET): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.GIVING_UP, E.CLIENT_GONE): Row(S.CLOSED),  # the script under way withdraws it
    (S.GIVING_UP, E.GAP): Row(S.CLOSED, (A.FAIL_SILENT,)),
    (S.GIVING_UP, E.BROKEN): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.LATE, E.ACCEPT): _ACCEPTED,
    (S.LATE, E.EXPIRED): Row(S.CLOSED, (A.FAIL_UNSERVED,)),
    (S.LATE, E.DEADLINE): Row(S.CLOSED, (A.FAIL_SILENT,)),
    (S.LATE, E.FAILED): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.LATE, E.RESET): Row(S.CLOSED, (A.FAIL_LOST,)),
    (S.LATE, E.CLIENT_GONE): Row(S.CLOSED),  # given up already: it can never run
    (S.LATE, E.GAP): Row(S.CLOSED, (A.FAIL_SILENT,)),
    (S.LATE, E.BROKEN): Row(S.CLOSED, (A.FAIL_LOST,)),
}

_RELAYING_ROWS: Rows = {
    (S.OPEN, E.COMPLETE): Row(S.DONE, (A.DISCARD,)),
    (S.OPEN, E.RESET): Row(S.MUTED, (A.DISCARD, A.FAIL_LOST)),
    (S.OPEN, E.PEER_GONE): Row(S.MUTED, (A.DISCARD, A.FAIL_LOST)),
    (S.OPEN, E.FAILED): Row(S.LOST, (A.FAIL_LOST,)),
    (S.OPEN, E.CLIENT_GONE): Row(S.LOST, (A.FAIL_CLIENT_GONE,)),
    (S.OPEN, E.END): Row(S.CLOSED, (A.SEND_FINAL, A.UNWATCH, A.CLOSE_PEER)),  # the app is told
    # Never a short body delivered as whole: the client gets 502 or a cut response, the
    # worker's application is told.
    (S.OPEN, E.GAP): Row(S.MUTED, (A.ABORT, A.DISCARD, A.FAIL_LOST)),
    (S.OPEN, E.BROKEN): Row(S.MUTED, (A.ABORT, A.DISCARD, A.FAIL_LOST)),
    (S.DONE, E.END): Row(S.CLOSED, (A.UNWATCH, A.CLOSE_PEER)),
    (S.LOST, E.END): Row(S.CLOSED, (A.UNWATCH, A.CLOSE_PEER)),
    (S.LOST, E.RESET): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.PEER_GONE): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.GAP): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.BROKEN): Row(S.MUTED, (A.DISCARD,)),
    (S.MUTED, E.END): Row(S.CLOSED, (A.UNWATCH, A.CLOSE_PEER)),
    (S.CLOSED, E.END): Row(S.CLOSED, (A.CLOSE_PEER,)),  # failed while waiting: forget it now
    # An accept for a connection that failed here: that worker's application would otherwise
    # wait for a client that is gone.
    (S.CLOSED, E.ACCEPT): Row(S.CLOSED, (A.SEND_RESET,)),
}

_IGNORED: list[Rows] = [
    ignore([S.GIVING_UP], [E.DEADLINE], "the late timer ran out while the give-up script "
           "runs: its answer, or its own timeout (as long), ends the wait"),
    ignore([S.OPEN], [E.EXPIRED], "a worker accepted it: an expiry from another one (a copy a "
           "reaper gave back, taken too late) never fails it"),
    ignore([S.DONE], [E.CLIENT_GONE, E.RESET, E.PEER_GONE, E.FAILED, E.GAP, E.EXPIRED,
                      E.COMPLETE, E.BROKEN],
           "the response is complete: the worker needs nothing more, nothing can fail it"),
    ignore([S.LOST], [E.CLIENT_GONE, E.FAILED, E.EXPIRED, E.COMPLETE], "failing already"),
    ignore([S.MUTED], [E.CLIENT_GONE, E.RESET, E.PEER_GONE, E.FAILED, E.GAP, E.EXPIRED,
                       E.COMPLETE, E.BROKEN], "failed already, and silent"),
    ignore([S.CLOSED], [E.CLIENT_GONE, E.FAILED, E.RESET, E.EXPIRED, E.GAP, E.PEER_GONE,
                        E.COMPLETE, E.WITHDRAWN, E.TAKEN_BY_WORKER, E.BROKEN],
           "arrived after the end: the client direction's task, a push's or the give-up "
           "script's answer, the other side's last words"),
]

EDGE_TABLE = Table(
    Side.EDGE, EDGE_STATES, [_WAITING_ROWS, _RELAYING_ROWS, *_IGNORED],
    timers={S.QUEUED: "accept", S.GIVING_UP: "late", S.LATE: "late"},
    output={S.IDLE: Output.HOLD, **{state: Output.HOLD for state in _WAITING},
            S.OPEN: Output.SEND, S.DONE: Output.DROP, S.LOST: Output.SEND,
            S.MUTED: Output.DROP, S.CLOSED: Output.SEND},
)
