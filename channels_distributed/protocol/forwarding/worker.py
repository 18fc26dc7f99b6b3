"""The worker's machine: acknowledge the request, run the application, and end with ``cd.close``.

A request taken before its deadline is acknowledged before the application runs (``TAKEN``),
or, for idempotent HTTP with its whole body, runs at once and lets its first output carry the
acknowledgement (``ACKING``, then ``ACK_SENT`` while Redis answers; ``CLOSING`` and
``CLOSING_SENT`` when the application returned before that). Output waits until the request is
known to be this worker's: one given back to its queue, or given up by the edge meanwhile,
never delivers anything. A request taken after its deadline, or given up before its
acknowledgement, is answered ``cd.expired`` and never runs.
"""

from __future__ import annotations

from .names import Action, Event, Output, Side, State
from .table import Row, Rows, Table, ignore

__all__ = ["RUNNING", "WORKER_EVENTS", "WORKER_STATES", "WORKER_TABLE"]

A, E, S = Action, Event, State

WORKER_STATES = (S.IDLE, S.TAKEN, S.ACKING, S.ACK_SENT, S.CLOSING, S.CLOSING_SENT, S.OPEN,
                 S.LOST, S.MUTED, S.CLOSED)
WORKER_EVENTS = (E.TAKE, E.OPTIMISTIC, E.DEADLINE, E.FLUSHED, E.ACKED, E.GIVEN_UP, E.REAPED,
                 E.FULL, E.FAILED, E.RESET, E.PEER_GONE, E.CLIENT_GONE, E.END, E.GAP, E.BROKEN)
#: The states in which the application runs (or may, once acknowledged in it).
RUNNING = frozenset({S.ACKING, S.ACK_SENT, S.OPEN, S.LOST, S.MUTED})

_NOT_OURS = (A.DISCARD, A.CLOSE_PEER)  # given back, or Redis failed: never runs here
_FAIL = (A.DISCARD, A.FAIL_LOST)

_ACKNOWLEDGING: Rows = {
    (S.IDLE, E.DEADLINE): Row(S.CLOSED, (A.DROP, A.SEND_EXPIRED, A.CLOSE_PEER)),  # never late
    (S.IDLE, E.TAKE): Row(S.TAKEN, (A.SEND_ACCEPT,)),
    (S.IDLE, E.OPTIMISTIC): Row(S.ACKING, (A.SEND_ACCEPT, A.WATCH)),
    (S.IDLE, E.BROKEN): Row(S.CLOSED, (A.DISCARD,)),
    (S.TAKEN, E.ACKED): Row(S.OPEN, (A.FLUSH, A.WATCH)),
    (S.TAKEN, E.GIVEN_UP): Row(S.CLOSED, (A.DISCARD, A.SEND_EXPIRED, A.CLOSE_PEER)),
    (S.TAKEN, E.REAPED): Row(S.CLOSED, _NOT_OURS),  # another worker runs it
    (S.TAKEN, E.FAILED): Row(S.CLOSED, _NOT_OURS),  # as reaped: a reaper gives it back
    (S.TAKEN, E.BROKEN): Row(S.CLOSED, _NOT_OURS),
    # Idempotent HTTP with its whole body: the first output acknowledges it.
    (S.ACKING, E.FLUSHED): Row(S.ACK_SENT),
    (S.ACKING, E.END): Row(S.CLOSING, (A.SEND_FINAL, A.UNWATCH, A.FLUSH_NOW)),
    (S.ACKING, E.PEER_GONE): Row(S.MUTED, _FAIL),
    (S.ACKING, E.BROKEN): Row(S.MUTED, _FAIL),
    (S.ACK_SENT, E.ACKED): Row(S.OPEN, (A.FLUSH,)),
    # Given up by the edge at its deadline: nothing was delivered; it answers 503 at once.
    (S.ACK_SENT, E.GIVEN_UP): Row(S.MUTED, (A.DISCARD, A.SEND_EXPIRED, A.FAIL_LOST)),
    (S.ACK_SENT, E.REAPED): Row(S.MUTED, _FAIL),  # never delivered: another worker runs it
    (S.ACK_SENT, E.FULL): Row(S.MUTED, _FAIL),
    (S.ACK_SENT, E.FAILED): Row(S.MUTED, _FAIL),
    (S.ACK_SENT, E.PEER_GONE): Row(S.MUTED, _FAIL),
    (S.ACK_SENT, E.END): Row(S.CLOSING_SENT, (A.SEND_FINAL, A.UNWATCH)),
    # The edge had the accept and heard from its client before Redis's answer came back here:
    # the application is told; the answer still decides what leaves.
    (S.ACK_SENT, E.CLIENT_GONE): Row(S.ACK_SENT, (A.FAIL_LOST,)),
    (S.ACK_SENT, E.RESET): Row(S.ACK_SENT, (A.FAIL_LOST,)),
    (S.ACK_SENT, E.GAP): Row(S.MUTED, (A.ABORT, *_FAIL)),
    (S.ACK_SENT, E.BROKEN): Row(S.MUTED, (A.ABORT, *_FAIL)),
    # The application returned before its first output left: the close carries the ack.
    (S.CLOSING, E.FLUSHED): Row(S.CLOSING_SENT),
    (S.CLOSING, E.BROKEN): Row(S.CLOSED, _NOT_OURS),
    (S.CLOSING_SENT, E.ACKED): Row(S.CLOSED, (A.FLUSH, A.CLOSE_PEER)),
    (S.CLOSING_SENT, E.GIVEN_UP): Row(S.CLOSED, (A.DISCARD, A.SEND_EXPIRED, A.CLOSE_PEER)),
    (S.CLOSING_SENT, E.REAPED): Row(S.CLOSED, _NOT_OURS),
    (S.CLOSING_SENT, E.FULL): Row(S.CLOSED, _NOT_OURS),
    (S.CLOSING_SENT, E.FAILED): Row(S.CLOSED, _NOT_OURS),
    (S.CLOSING_SENT, E.BROKEN): Row(S.CLOSED, _NOT_OURS),
}

_RUNNING: Rows = {
    (S.OPEN, E.RESET): Row(S.MUTED, _FAIL),
    (S.OPEN, E.PEER_GONE): Row(S.MUTED, _FAIL),
    (S.OPEN, E.FAILED): Row(S.LOST, (A.FAIL_LOST,)),
    (S.OPEN, E.CLIENT_GONE): Row(S.LOST, (A.FAIL_LOST,)),
    (S.OPEN, E.END): Row(S.CLOSED, (A.SEND_FINAL, A.UNWATCH, A.CLOSE_PEER)),
    (S.OPEN, E.GAP): Row(S.MUTED, (A.ABORT, *_FAIL)),
    (S.OPEN, E.BROKEN): Row(S.MUTED, (A.ABORT, *_FAIL)),
    (S.LOST, E.END): Row(S.CLOSED, (A.SEND_FINAL, A.UNWATCH, A.CLOSE_PEER)),
    (S.LOST, E.RESET): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.PEER_GONE): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.GAP): Row(S.MUTED, (A.DISCARD,)),
    (S.LOST, E.BROKEN): Row(S.MUTED, (A.DISCARD,)),
    (S.MUTED, E.END): Row(S.CLOSED, (A.UNWATCH, A.CLOSE_PEER)),
    # Its acknowledgement answered after it failed: an edge waiting for it is told it never ran.
    (S.MUTED, E.GIVEN_UP): Row(S.MUTED, (A.SEND_EXPIRED,)),
    (S.CLOSED, E.GIVEN_UP): Row(S.CLOSED, (A.SEND_EXPIRED,)),
}

_ANSWERS_AFTER = (E.ACKED, E.REAPED, E.FULL)
_IGNORED: list[Rows] = [
    ignore([S.CLOSING_SENT], [E.CLIENT_GONE, E.RESET, E.GAP, E.PEER_GONE],
           "the application returned already; Redis's answer to its output ends it"),
    ignore([S.LOST], [E.CLIENT_GONE, E.FAILED], "failing already"),
    ignore([S.MUTED], [E.CLIENT_GONE, E.FAILED, E.RESET, E.PEER_GONE, E.GAP, E.BROKEN,
                       *_ANSWERS_AFTER], "failed already, and silent"),
    ignore([S.CLOSED], [E.CLIENT_GONE, E.FAILED, E.RESET, E.PEER_GONE, E.GAP, E.BROKEN,
                        *_ANSWERS_AFTER],
           "arrived after the end: a push's answer, the other side's last words"),
]

WORKER_TABLE = Table(
    Side.WORKER, WORKER_STATES, [_ACKNOWLEDGING, _RUNNING, *_IGNORED],
    timers={},
    output={S.IDLE: Output.HOLD, S.TAKEN: Output.HOLD, S.ACKING: Output.ACK_FIRST,
            S.ACK_SENT: Output.HOLD, S.CLOSING: Output.ACK_FIRST, S.CLOSING_SENT: Output.HOLD,
            S.OPEN: Output.SEND, S.LOST: Output.SEND, S.MUTED: Output.DROP,
            S.CLOSED: Output.SEND},
)
