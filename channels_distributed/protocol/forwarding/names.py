"""The names of the forwarding machines: sides, states, events, actions, what output does in a
state, and what each failure means to the client and the application."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channels_distributed.exceptions import ClientGone, NoWorker, PeerLost, Unserved, WorkerSilent

__all__ = ["FAILURES", "Action", "Event", "Failure", "Output", "Side", "State"]


class Side(str, enum.Enum):
    """Which process a machine runs in."""

    EDGE = "edge"  # the distributor: queues the connection, relays it to the client
    WORKER = "worker"  # takes the connection from its queue and runs the application


class State(str, enum.Enum):
    IDLE = "idle"  # nothing sent or taken yet
    QUEUED = "queued"  # edge: the request is queued; waiting for a worker's accept
    GIVING_UP = "giving-up"  # edge: deadline passed; withdrawing the request or marking it
    LATE = "late"  # edge: a worker took it by the deadline; its accept may still come
    TAKEN = "taken"  # worker: taken, its acknowledgement asked; nothing goes out
    ACKING = "acking"  # worker: runs before its acknowledgement; the first output carries it
    ACK_SENT = "ack-sent"  # worker: that first output is on its way with the acknowledgement
    CLOSING = "closing"  # worker: the app returned before any output left (it carries the ack)
    CLOSING_SENT = "closing-sent"  # worker: the same, the output and the ack on their way
    OPEN = "open"  # events flow both ways
    DONE = "done"  # edge: the response is complete; the worker needs nothing more
    LOST = "lost"  # the other side, the client or Redis is gone; the owner winds down
    MUTED = "muted"  # as LOST, and nothing more goes out (the other side needs nothing)
    CLOSED = "closed"  # over: the connection is forgotten


class Event(str, enum.Enum):
    # Sent by the other side (the names of the envelope's messages).
    ACCEPT = "cd.accept"
    EXPIRED = "cd.expired"
    RESET = "cd.reset"
    # Local: the owner, Redis's answers, timers, the shell.
    CONNECT = "connect"  # edge: the connection arrived and has a route key
    TAKE = "take"  # worker: taken before its deadline, to acknowledge before it runs
    OPTIMISTIC = "optimistic"  # worker: taken in time, runs before its acknowledgement
    DEADLINE = "deadline"  # a timer ran out (edge) / taken after its deadline (worker)
    WITHDRAWN = "withdrawn"  # edge: the give-up script removed the request from its queue
    TAKEN_BY_WORKER = "taken-by-worker"  # edge: the give-up script found a worker had it
    FLUSHED = "flushed"  # worker: the first output left, carrying the acknowledgement
    ACKED = "acked"  # worker: the acknowledgement succeeded: the request is ours
    GIVEN_UP = "given-up"  # worker: the edge gave it up before the acknowledgement
    REAPED = "reaped"  # worker: a reaper gave the request back to its queue
    FULL = "full"  # worker: the edge's inbox had no room for the first output
    FAILED = "failed"  # Redis refused or is unreachable: a push or an acknowledgement failed
    PEER_GONE = "peer-gone"  # the other process went away (presence)
    CLIENT_GONE = "client-gone"  # the client went away (edge) / the app heard so (worker)
    COMPLETE = "complete"  # edge: the response went to the client in full
    END = "end"  # the owner is done (the relay returned, the application returned)
    GAP = "gap"  # entries from the other side were lost in Redis: the stream is broken
    BROKEN = "broken"  # the shell met an event its machine has no row for: a defect


class Action(str, enum.Enum):
    PUSH_CONNECT = "push-connect"  # queue the connect request on its route key
    GIVE_UP = "give-up"  # run the give-up script: withdraw the request, or mark it given up
    WITHDRAW = "withdraw"  # withdraw the request in the background (nobody waits for it)
    ACCEPTED = "accepted"  # note the worker's inbox and id; the wait for a worker ends
    SEND_ACCEPT = "send-accept"  # post this worker's cd.accept
    RUN_APP = "run-app"  # run the application
    FLUSH = "flush"  # what output waited may leave now (with what else this loop turn posts)
    FLUSH_NOW = "flush-now"  # it leaves at once: the owner posts nothing more
    DISCARD = "discard"  # drop what output waits
    WATCH = "watch"  # watch the other process's presence
    UNWATCH = "unwatch"
    SEND_FINAL = "send-final"  # post the owner's last word (the edge's disconnect, cd.close)
    SEND_EXPIRED = "send-expired"  # tell the edge the request will never run
    SEND_RESET = "send-reset"  # tell the other side a connection this one forgot is gone
    ABORT = "abort"  # tell the other side the stream is broken (cd.reset, aside)
    DROP = "drop"  # remove the request from the processing list, unrun
    FAIL_NO_WORKER = "fail-no-worker"
    FAIL_UNSERVED = "fail-unserved"
    FAIL_SILENT = "fail-silent"
    FAIL_LOST = "fail-lost"
    FAIL_CLIENT_GONE = "fail-client-gone"
    CLOSE_PEER = "close-peer"  # flush what may leave, forget the connection


class Output(enum.Enum):
    """What happens to events the owner posts, in a state."""

    HOLD = "hold"  # they wait (until FLUSH)
    SEND = "send"  # they leave, batched per loop turn
    ACK_FIRST = "ack-first"  # the next batch leaves with the acknowledgement (then FLUSHED)
    DROP = "drop"  # they are dropped: the other side needs nothing more


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failure raises in whoever waits on the connection, and what the client gets."""

    error: type[PeerLost]
    message: str  # formatted with the connection id
    status: int | None  # the HTTP answer, when the response has not started (None: none)
    close_code: int | None  # the WebSocket close code (None: none, the client is gone)


#: Each failure action: what it raises and how the edge answers the client.
FAILURES: dict[Action, Failure] = {
    Action.FAIL_NO_WORKER: Failure(NoWorker, "no worker accepted {} in time", 503, 1013),
    Action.FAIL_UNSERVED: Failure(Unserved, "{} reached a worker after its deadline", 503, 1013),
    Action.FAIL_SILENT: Failure(WorkerSilent, "the worker that took {} never answered", 502,
                                1011),
    Action.FAIL_CLIENT_GONE: Failure(ClientGone, "the client of {} went away", None, None),
    Action.FAIL_LOST: Failure(PeerLost, "the other side of {} is gone", 502, 1011),
}
