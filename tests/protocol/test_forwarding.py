"""The forwarding state machine, both sides driven in memory through a fake link.

``Pair`` is h11's ``ConnectionPair`` for this protocol: an edge machine and a worker machine, a
route queue, the given-up marks and the two inboxes, all in memory, with a clock the test moves.
The actions each machine returns are carried out the way the shells (distributor/edge.py,
forwarding/peer.py, worker/connection.py) carry them out, so messages one side sends arrive
at the other as events. Every scenario, faults included, is a function run by the parametrized
test below; ``test_every_row_is_exercised`` runs them all and checks that together they took
every row of ``TABLE``, so a new row cannot land untested.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from channels_distributed.protocol import forwarding as fw
from channels_distributed.protocol.forwarding import EDGE, TABLE, WORKER, Forwarding

ACCEPT_TIMEOUT = 5.25
LATE_TIMEOUT = 5.0
TAKEN: set[tuple[str, str, str]] = set()  # every row any Pair took


class Pair:
    """One forwarded connection: both machines and what lies between them."""

    def __init__(self, window: int = 2) -> None:
        self.machines = {EDGE: Forwarding(EDGE, window, ACCEPT_TIMEOUT, LATE_TIMEOUT),
                         WORKER: Forwarding(WORKER, window)}
        self.now = 0.0
        self.done: list[tuple[str, str]] = []  # (side, action) carried out, in order
        self.queue: list[str] = []  # the route queue ("connect" while queued)
        self.processing: list[str] = []  # the worker's processing list
        self.given_up = False  # the edge's mark: the worker's acknowledgement fails
        self.inbox: dict[str, list[str]] = {EDGE: [], WORKER: []}  # messages in flight
        self.held: list[str] = []  # the worker's output until released
        self.released = False
        self.failure: dict[str, str] = {}  # side -> the FAIL_* action it got
        self.app_runs = 0
        self.closed: set[str] = set()
        self.slow_script = False  # the give-up script's answer waits for answer_give_up()
        self.script_answer: str | None = None

    def state(self, side: str) -> str:
        return self.machines[side].state

    # Events in -----------------------------------------------------------------------------
    def fire(self, side: str, event: str) -> tuple[str, ...]:
        machine = self.machines[side]
        key = (side, machine.state, event)
        actions = machine.handle(event, self.now)
        if key in TABLE:
            TAKEN.add(key)
        for action in actions:
            self._carry(side, action)
        return actions

    def tick(self, seconds: float) -> None:
        """Move the clock; the edge's timer fires as the sweeper would fire it."""
        self.now += seconds
        machine = self.machines[EDGE]
        key = (EDGE, machine.state, fw.DEADLINE)
        actions = machine.due(self.now)
        if actions:
            TAKEN.add(key)
        for action in actions:
            self._carry(EDGE, action)

    def deliver(self, side: str) -> None:
        """The side's inbox reader hands it what arrived."""
        messages, self.inbox[side] = self.inbox[side], []
        for message in messages:
            if self.state(side) == fw.CLOSED:
                # The hub has forgotten the connection: its CLOSED row answers strays.
                key = (side, fw.CLOSED, message)
                _, actions = fw.transition(*key)
                if key in TABLE:
                    TAKEN.add(key)
                for action in actions:
                    self._carry(side, action)
            elif message in (fw.ACCEPT, fw.RESET, fw.EXPIRED):
                self.fire(side, message)

    # The worker's steps ----------------------------------------------------------------------
    def take(self, late: bool = False, optimistic: bool = False) -> None:
        assert self.queue, "nothing queued"
        self.processing.append(self.queue.pop(0))
        self.fire(WORKER, fw.DEADLINE if late else fw.OPTIMISTIC if optimistic else fw.TAKE)

    def acknowledge(self, reaped: bool = False, failed: bool = False) -> None:
        """The ACK script: given up, given back by a reaper, or ours."""
        if failed:
            self.fire(WORKER, fw.FAILED)
        elif self.given_up:
            self.fire(WORKER, fw.GIVEN_UP)
        elif reaped or not self.processing:
            self.fire(WORKER, fw.REAPED)
        else:
            self.processing.clear()
            self.fire(WORKER, fw.ACKED)

    def flush_worker(self) -> None:
        if self.released:
            self.inbox[EDGE].extend(self.held)
            self.held.clear()

    # Actions out -----------------------------------------------------------------------------
    def _carry(self, side: str, action: str) -> None:
        self.done.append((side, action))
        if action.startswith("fail-"):
            self.failure.setdefault(side, action)
        elif action == fw.PUSH_CONNECT:
            self.queue.append("connect")
        elif action in (fw.GIVE_UP, fw.WITHDRAW):
            self._give_up(answer=action == fw.GIVE_UP)
        elif action == fw.SEND_ACCEPT:
            self.held.append(fw.ACCEPT)
        elif action == fw.RELEASE:
            self.released = True
            self.flush_worker()
        elif action == fw.FINISH_OUTPUT and side == WORKER:
            self.held.clear()
        elif action == fw.SEND_EXPIRED:
            self.inbox[EDGE].append(fw.EXPIRED)
        elif action in (fw.SEND_RESET, fw.ABORT):
            self.inbox[WORKER if side == EDGE else EDGE].append(fw.RESET)
        elif action == fw.SEND_FINAL and side == WORKER:
            self.held.append("cd.close")
            self.flush_worker()
        elif action == fw.RUN_APP:
            self.app_runs += 1
        elif action == fw.DROP:
            self.processing.clear()
        elif action == fw.CLOSE_PEER:
            self.closed.add(side)

    def _give_up(self, answer: bool) -> None:
        if "connect" in self.queue:
            self.queue.remove("connect")
            withdrawn = True
        else:
            self.given_up = True
            withdrawn = False
        if answer:  # the edge waits for the script's answer
            self.script_answer = fw.WITHDRAWN if withdrawn else fw.TAKEN_BY_WORKER
            if not self.slow_script:
                self.answer_give_up()

    def answer_give_up(self) -> None:
        answer, self.script_answer = self.script_answer, None
        assert answer is not None, "no give-up script under way"
        self.fire(EDGE, answer)


def connected(window: int = 2, optimistic: bool = False) -> Pair:
    """A connection a worker accepted: both sides OPEN (or the worker ACKING)."""
    pair = Pair(window)
    pair.fire(EDGE, fw.CONNECT)
    pair.take(optimistic=optimistic)
    if not optimistic:
        pair.acknowledge()
    pair.deliver(EDGE)
    assert pair.state(EDGE) == fw.OPEN
    return pair


# Scenarios ---------------------------------------------------------------------------------------
def happy_path() -> Pair:
    pair = connected()
    assert pair.app_runs == 1 and pair.state(WORKER) == fw.OPEN
    pair.fire(WORKER, fw.END)  # the application returned: cd.close
    pair.deliver(EDGE)
    pair.fire(EDGE, fw.COMPLETE)
    pair.fire(EDGE, fw.END)
    assert pair.state(EDGE) == pair.state(WORKER) == fw.CLOSED
    assert pair.closed == {EDGE, WORKER} and not pair.failure
    assert (EDGE, fw.SEND_FINAL) not in pair.done  # complete: no disconnect for the worker
    return pair


def optimistic_path() -> Pair:
    pair = connected(optimistic=True)
    assert pair.state(WORKER) == fw.ACKING and pair.app_runs == 1
    pair.acknowledge()
    assert pair.state(WORKER) == fw.OPEN
    pair.fire(WORKER, fw.END)
    return pair


def optimistic_app_returns_first() -> Pair:
    """The app answered and returned before the acknowledgement's answer: output still goes."""
    pair = connected(optimistic=True)
    pair.released = False  # held again: the first flush carried the acknowledgement
    pair.fire(WORKER, fw.END)
    assert pair.held == ["cd.close"]
    pair.acknowledge()
    assert pair.held == [] and pair.inbox[EDGE] == ["cd.close"]
    return pair


def optimistic_reaped() -> Pair:
    """A reaper gave the request back: this worker's output is never delivered."""
    pair = connected(optimistic=True)
    pair.acknowledge(reaped=True)
    assert pair.state(WORKER) == fw.LOST and pair.failure[WORKER] == fw.FAIL_LOST
    pair.fire(WORKER, fw.END)
    assert pair.state(WORKER) == fw.CLOSED
    return pair


def optimistic_reaped_after_return() -> Pair:
    pair = connected(optimistic=True)
    pair.released = False
    pair.fire(WORKER, fw.END)
    pair.acknowledge(reaped=True)
    assert pair.held == []  # dropped, never delivered
    return pair


def optimistic_faults() -> Pair:
    for event in (fw.FULL, fw.FAILED, fw.RESET, fw.PEER_GONE, fw.CLIENT_GONE):
        pair = connected(optimistic=True)
        pair.fire(WORKER, event)
        assert pair.state(WORKER) == fw.LOST, event
        pair.acknowledge()  # the acknowledgement's answer after all: the close may go out
        assert pair.state(WORKER) == fw.LOST
        pair.fire(WORKER, fw.END)
        assert pair.state(WORKER) == fw.CLOSED
    return pair


def no_accept_by_deadline() -> Pair:
    """No worker: at the deadline the request is withdrawn and never runs (503)."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.tick(ACCEPT_TIMEOUT - 0.01)
    assert pair.state(EDGE) == fw.QUEUED
    pair.tick(0.02)
    assert pair.failure[EDGE] == fw.FAIL_NO_WORKER and pair.queue == []
    pair.fire(EDGE, fw.END)
    assert pair.closed == {EDGE}
    return pair


def taken_after_deadline() -> Pair:
    """A worker takes the request past its deadline: dropped, never run; the edge says 503."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take(late=True)
    assert pair.app_runs == 0 and pair.processing == []
    pair.deliver(EDGE)
    assert pair.failure[EDGE] == fw.FAIL_UNSERVED
    return pair


def given_up_before_ack() -> Pair:
    """Taken by the deadline, not acknowledged: the edge marks it given up, the worker's
    acknowledgement fails, it never runs and says so (cd.expired): 503 at once."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.tick(ACCEPT_TIMEOUT + 0.1)
    assert pair.state(EDGE) == fw.LATE and pair.given_up
    pair.acknowledge()
    assert pair.state(WORKER) == fw.CLOSED and pair.app_runs == 0
    pair.deliver(EDGE)
    assert pair.failure[EDGE] == fw.FAIL_UNSERVED
    return pair


def late_accept() -> Pair:
    """Acknowledged just before the deadline: the edge waits a little longer, and serves it."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.acknowledge()
    pair.inbox[EDGE].clear()  # the accept is slow to arrive...
    pair.tick(ACCEPT_TIMEOUT + 0.1)
    assert pair.state(EDGE) == fw.LATE
    pair.inbox[EDGE].append(fw.ACCEPT)  # ...but comes within the late window
    pair.deliver(EDGE)
    assert pair.state(EDGE) == fw.OPEN and EDGE not in pair.failure
    pair.tick(LATE_TIMEOUT + 1)  # no timer runs any more
    assert pair.state(EDGE) == fw.OPEN
    return pair


def accept_while_giving_up() -> Pair:
    """The accept arrives while the give-up script runs: the connection is served, and the
    script's late answer does not fail it (it once armed a timer that failed it 5 s later)."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.acknowledge()
    pair.slow_script = True
    pair.tick(ACCEPT_TIMEOUT + 0.1)  # the script is sent; its answer comes below
    assert pair.state(EDGE) == fw.GIVING_UP
    pair.deliver(EDGE)  # the accept
    pair.answer_give_up()
    pair.tick(LATE_TIMEOUT + 1)
    assert pair.state(EDGE) == fw.OPEN and EDGE not in pair.failure
    return pair


def worker_silent() -> Pair:
    """Acknowledged, then the worker never answers: 502 after the late window."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.tick(ACCEPT_TIMEOUT + 0.1)
    pair.tick(LATE_TIMEOUT + 0.1)
    assert pair.failure[EDGE] == fw.FAIL_SILENT
    return pair


def late_accept_after_edge_closed() -> Pair:
    """The client left while waiting; a worker accepts later: it is reset, its app told."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.fire(EDGE, fw.CLIENT_GONE)  # cancelled: withdrawn, or marked given up
    pair.fire(EDGE, fw.END)
    pair.given_up = False  # the mark came too late: the worker had acknowledged
    pair.acknowledge()
    pair.deliver(EDGE)  # the accept reaches an edge that forgot the connection
    assert pair.inbox[WORKER] == [fw.RESET]
    pair.deliver(WORKER)
    assert pair.state(WORKER) == fw.LOST and pair.failure[WORKER] == fw.FAIL_LOST
    return pair


def client_gone_while_waiting() -> Pair:
    for step in ("queued", "giving-up", "late"):
        pair = Pair()
        pair.fire(EDGE, fw.CONNECT)
        if step != "queued":
            pair.take()
            pair.slow_script = step == "giving-up"
            pair.tick(ACCEPT_TIMEOUT + 0.1)
            assert pair.state(EDGE) == step
        pair.fire(EDGE, fw.CLIENT_GONE)
        assert pair.state(EDGE) == fw.CLOSED and EDGE not in pair.failure, step
        assert pair.queue == [], step  # never left queued for a worker to run
        if step == "giving-up":
            pair.answer_give_up()  # the script's answer comes to a closed connection
            assert pair.state(EDGE) == fw.CLOSED and EDGE not in pair.failure
    return pair


def waiting_faults() -> Pair:
    """Redis gone, or a reset, while waiting for a worker; an expiry while giving up."""
    for state in (fw.QUEUED, fw.GIVING_UP, fw.LATE):
        for event in (fw.FAILED, fw.RESET, fw.EXPIRED):
            pair = Pair()
            pair.fire(EDGE, fw.CONNECT)
            if state != fw.QUEUED:
                pair.slow_script = state == fw.GIVING_UP
                if state == fw.LATE:
                    pair.take()
                pair.tick(ACCEPT_TIMEOUT + 0.1)
            assert pair.state(EDGE) == state
            pair.fire(EDGE, event)
            assert pair.state(EDGE) == fw.CLOSED, (state, event)
            expected = fw.FAIL_UNSERVED if event == fw.EXPIRED else fw.FAIL_LOST
            assert pair.failure[EDGE] == expected, (state, event)
    return pair


def withdrawn_while_giving_up() -> Pair:
    """The deadline's script took the request out of its queue, nobody took it: 503."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.slow_script = True
    pair.tick(ACCEPT_TIMEOUT + 0.1)
    assert pair.state(EDGE) == fw.GIVING_UP and pair.queue == []
    pair.answer_give_up()
    assert pair.failure[EDGE] == fw.FAIL_NO_WORKER
    return pair


def reaped_before_ack() -> Pair:
    """A reaper gave the request back before this worker acknowledged: another runs it."""
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.acknowledge(reaped=True)
    assert pair.state(WORKER) == fw.CLOSED and pair.app_runs == 0 and pair.inbox[EDGE] == []
    return pair


def redis_gone_at_ack() -> Pair:
    pair = Pair()
    pair.fire(EDGE, fw.CONNECT)
    pair.take()
    pair.acknowledge(failed=True)
    assert pair.state(WORKER) == fw.CLOSED and pair.app_runs == 0
    return pair


def redis_gone_while_open() -> Pair:
    for side in (EDGE, WORKER):
        pair = connected()
        pair.fire(side, fw.FAILED)
        assert pair.state(side) == fw.LOST and pair.failure[side] == fw.FAIL_LOST
        pair.fire(side, fw.END)
        assert pair.state(side) == fw.CLOSED
    return pair


def worker_gone() -> Pair:
    """The worker's process went away after accepting: 502/1011 at once."""
    pair = connected()
    pair.fire(EDGE, fw.PEER_GONE)
    assert pair.failure[EDGE] == fw.FAIL_LOST and pair.state(EDGE) == fw.LOST
    pair.fire(EDGE, fw.END)
    assert (EDGE, fw.SEND_FINAL) not in pair.done
    return pair


def distributor_gone() -> Pair:
    pair = connected()
    pair.fire(WORKER, fw.PEER_GONE)
    assert pair.failure[WORKER] == fw.FAIL_LOST
    pair.fire(WORKER, fw.END)
    return pair


def reset_while_open() -> Pair:
    for side in (EDGE, WORKER):
        pair = connected()
        pair.fire(side, fw.RESET)
        assert pair.state(side) == fw.LOST
        assert (side, fw.FINISH_OUTPUT) in pair.done  # nothing more goes out
    return pair


def client_gone_while_open() -> Pair:
    """The client left mid-exchange: the edge's relay ends, the worker's app is told."""
    pair = connected()
    pair.fire(EDGE, fw.END)
    assert (EDGE, fw.SEND_FINAL) in pair.done  # the disconnect, for the worker's app
    pair.fire(WORKER, fw.CLIENT_GONE)  # the app received it
    assert pair.state(WORKER) == fw.LOST
    pair = connected()
    pair.fire(EDGE, fw.CLIENT_GONE)  # the upstream direction saw it first
    assert pair.failure[EDGE] == fw.FAIL_CLIENT_GONE
    pair.fire(EDGE, fw.END)
    return pair


def expiry_never_fails_an_open_connection() -> Pair:
    pair = connected()
    pair.fire(EDGE, fw.EXPIRED)
    assert pair.state(EDGE) == fw.OPEN and EDGE not in pair.failure
    return pair


def window_exhausted() -> Pair:
    """Data leaves only while the window has room; cd.ack refills it."""
    pair = connected(window=2)
    worker = pair.machines[WORKER]
    assert worker.spend() and worker.spend()
    assert not worker.spend()  # exhausted: the sender waits
    worker.grant(1)
    assert worker.spend() and not worker.spend()
    return pair


def optimistic_given_up() -> Pair:
    """The edge gave the request up at its deadline while the worker ran it optimistically: its
    output is dropped, it says so (cd.expired), and the edge answers 503 at once, not 502 after
    the late-accept wait."""
    for returned in (False, True):
        pair = Pair()
        pair.fire(EDGE, fw.CONNECT)
        pair.take(optimistic=True)
        # The accept travels with the first output, which carries the acknowledgement: it is
        # delivered only if that succeeds.
        pair.held, pair.inbox[EDGE], pair.released = pair.inbox[EDGE], [], False
        pair.tick(ACCEPT_TIMEOUT + 0.01)  # the give-up script finds it taken: marked
        assert pair.state(EDGE) == fw.LATE and pair.given_up
        if returned:
            pair.fire(WORKER, fw.END)
        pair.acknowledge()
        assert pair.held == []  # dropped, never delivered
        assert pair.state(WORKER) == (fw.CLOSED if returned else fw.LOST)
        pair.deliver(EDGE)
        assert pair.failure[EDGE] == fw.FAIL_UNSERVED and pair.state(EDGE) == fw.CLOSED
    return pair


def answers_after_the_app_lost_its_client() -> Pair:
    """The acknowledgement's answer reaches a worker whose application lost its client."""
    for answer in ("given-up", "reaped"):
        pair = connected(optimistic=True)
        pair.released = False
        pair.fire(WORKER, fw.CLIENT_GONE)
        pair.given_up = answer == "given-up"
        pair.acknowledge(reaped=answer == "reaped")
        assert pair.state(WORKER) == fw.LOST and pair.held == []
        assert (fw.EXPIRED in pair.inbox[EDGE]) is (answer == "given-up")
    return pair


def entries_lost_in_redis() -> Pair:
    """A numbered entry is missing: the side that sees the gap fails its connection and tells
    the other (cd.reset), which fails too: never a short body delivered as whole."""
    for side in (EDGE, WORKER):
        pair = connected()
        pair.fire(side, fw.GAP)
        other = WORKER if side == EDGE else EDGE
        assert pair.state(side) == fw.LOST and pair.failure[side] == fw.FAIL_LOST
        pair.deliver(other)
        assert pair.state(other) == fw.LOST and pair.failure[other] == fw.FAIL_LOST
    pair = connected(optimistic=True)
    pair.fire(WORKER, fw.GAP)
    assert pair.state(WORKER) == fw.LOST and pair.inbox[EDGE][-1] == fw.RESET
    return pair


def accept_lost_in_redis() -> Pair:
    """Entries of a worker arrive but its accept was lost: a worker runs the request, so the
    client gets 502 (it may have run), never 503."""
    for late in (None, "giving-up", "late"):
        pair = Pair()
        pair.fire(EDGE, fw.CONNECT)
        if late is not None:
            pair.slow_script = True
            pair.take()
            pair.tick(ACCEPT_TIMEOUT + 0.01)
            if late == "late":
                pair.answer_give_up()
        pair.fire(EDGE, fw.GAP)
        assert pair.failure[EDGE] == fw.FAIL_SILENT and pair.state(EDGE) == fw.CLOSED, late
    return pair


def probe_of_a_forgotten_connection() -> Pair:
    """Asked about a connection it no longer has, a side answers with a reset."""
    pair = connected()
    pair.fire(WORKER, fw.END)
    pair.inbox[WORKER].append(fw.PROBE)
    pair.deliver(WORKER)
    assert pair.inbox[EDGE][-1] == fw.RESET
    pair.deliver(EDGE)
    pair.fire(EDGE, fw.END)
    pair.inbox[EDGE].append(fw.PROBE)
    pair.deliver(EDGE)
    assert pair.inbox[WORKER] == [fw.RESET]
    return pair


SCENARIOS: list[Callable[[], Pair]] = [
    happy_path, optimistic_path, optimistic_app_returns_first, optimistic_reaped,
    optimistic_reaped_after_return, optimistic_faults, no_accept_by_deadline,
    taken_after_deadline, given_up_before_ack, late_accept, accept_while_giving_up,
    worker_silent, late_accept_after_edge_closed, client_gone_while_waiting, waiting_faults,
    withdrawn_while_giving_up, reaped_before_ack, redis_gone_at_ack, redis_gone_while_open,
    worker_gone, distributor_gone, reset_while_open, client_gone_while_open,
    expiry_never_fails_an_open_connection, window_exhausted, optimistic_given_up,
    answers_after_the_app_lost_its_client, entries_lost_in_redis, accept_lost_in_redis,
    probe_of_a_forgotten_connection,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_scenario(scenario: Callable[[], Pair]) -> None:
    scenario()


def test_every_row_is_exercised() -> None:
    """Together the scenarios take every row of the table: a new row needs a scenario."""
    TAKEN.clear()
    for scenario in SCENARIOS:
        scenario()
    untested = sorted(set(TABLE) - TAKEN)
    assert not untested, f"rows no scenario takes: {untested}"


def test_the_table_names_only_known_states_events_and_actions() -> None:
    names = {value for name, value in vars(fw).items() if name.isupper() and isinstance(value, str)}
    for (side, state, event), (next_state, actions) in TABLE.items():
        assert side in (EDGE, WORKER)
        assert {state, event, next_state, *actions} <= names, (side, state, event)
    # Each side's rows start from IDLE and every state entered can be left or is CLOSED.
    for side in (EDGE, WORKER):
        entered = {nxt for (s, _, _), (nxt, _) in TABLE.items() if s == side}
        left = {state for (s, state, _) in TABLE if s == side}
        assert entered - left <= {fw.CLOSED}, side


def test_an_event_without_a_row_is_ignored() -> None:
    machine = Forwarding(EDGE, 4)
    assert machine.handle(fw.ACCEPT) == ()  # no connect yet
    assert machine.state == fw.IDLE
    assert fw.transition(WORKER, fw.CLOSED, fw.RESET) == (fw.CLOSED, ())


def test_timers_run_on_the_callers_clock() -> None:
    machine = Forwarding(EDGE, 4, accept_timeout=2.0, late_timeout=3.0)
    machine.handle(fw.CONNECT, now=100.0)
    assert machine.timer == 102.0
    assert machine.due(101.9) == () and machine.state == fw.QUEUED
    # Giving it up and a late accept share one timer: together they take at most late_timeout.
    assert machine.due(102.0) == (fw.GIVE_UP,) and machine.timer == 105.0
    machine.handle(fw.TAKEN_BY_WORKER, now=103.0)
    assert machine.timer == 105.0
    machine.handle(fw.ACCEPT, now=104.0)
    assert machine.timer is None and machine.due(1e9) == ()


def test_credit_is_the_window() -> None:
    machine = Forwarding(WORKER, 3)
    assert [machine.spend() for _ in range(4)] == [True, True, True, False]
    machine.grant(2)
    assert machine.credit == 2
