"""The forwarding machines: their tables checked as data, and both sides driven through the real
shells (the edge, its relay, the hub and peers, a worker's connection) over the in-memory link
(tests/memlink.py), in many random orders of events, checking what users rely on.

Each row is checked alone (its state reached from IDLE through the table). The random runs are
seeded (``SEEDS``): each draws an application, a request and a schedule of faults (Redis down, a
process gone, the client leaving, a request reaped, an inbox full, entries lost, slow scripts, a
late take) and checks the invariants: every connection ends (no peer left on either side), a
request runs at most once, nothing runs after its deadline, no event ever reaches a state that
has no row for it. The scenarios of tests/distributor reach the rare faults on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from typing import Any

import pytest

from channels_distributed.distributor.relay import serve_http, serve_websocket
from channels_distributed.exceptions import PeerLost
from channels_distributed.forwarding.hub import now_ms
from channels_distributed.protocol import forwarding as fw
from channels_distributed.protocol.envelope import decode_connect
from channels_distributed.protocol.forwarding import (
    EDGE_EVENTS,
    EDGE_STATES,
    TABLES,
    WORKER_EVENTS,
    WORKER_STATES,
    Event,
    Forwarding,
    Ignore,
    Row,
    Side,
    State,
    UnexpectedEvent,
)
from tests.distributor.test_forwarding_shells import SCOPE, Client
from tests.memlink import KEY, Deployment

# 120 in the fast tier (about 5 s); CD_FORWARDING_SEEDS=5000 for a longer search.
SEEDS = range(int(os.environ.get("CD_FORWARDING_SEEDS", "120")))


# The tables, as data ------------------------------------------------------------------------------
@pytest.mark.parametrize("side", list(Side))
def test_each_table_names_its_own_states_and_events_only(side: Side) -> None:
    table = TABLES[side]
    states, events = (EDGE_STATES, EDGE_EVENTS) if side is Side.EDGE else (
        WORKER_STATES, WORKER_EVENTS)
    for (state, event), row in table.rows.items():
        assert state in states and event in events, (state, event)
        if isinstance(row, Row):
            assert row.next in states, (state, event)
        else:
            assert row.reason.strip(), (state, event)  # every ignore row says why
    # Every state can meet a defect (BROKEN): the shell's way out is never itself a defect.
    assert all((state, Event.BROKEN) in table.rows for state in states)
    # Every state entered can be left, or is CLOSED.
    entered = {row.next for row in table.rows.values() if isinstance(row, Row)}
    left = {state for (state, _), row in table.rows.items() if isinstance(row, Row)}
    assert entered - left <= {State.CLOSED}
    assert set(table.output) == set(states)


def test_a_pair_without_a_row_raises() -> None:
    machine = Forwarding(Side.EDGE, 4)
    with pytest.raises(UnexpectedEvent, match=r"no row for 'cd.accept' in state 'idle'"):
        machine.handle(Event.ACCEPT)  # no connect yet
    assert machine.state is State.IDLE
    worker = Forwarding(Side.WORKER, 4)
    worker.handle(Event.TAKE)
    with pytest.raises(UnexpectedEvent):
        worker.handle(Event.FLUSHED)  # nothing may leave before the acknowledgement


def test_an_ignore_row_changes_nothing() -> None:
    machine = Forwarding(Side.EDGE, 4)
    for event in (Event.CONNECT, Event.ACCEPT, Event.COMPLETE):
        machine.handle(event)
    assert machine.handle(Event.RESET) == () and machine.state is State.DONE


def test_timers_run_on_the_callers_clock() -> None:
    machine = Forwarding(Side.EDGE, 4, accept_timeout=2.0, late_timeout=3.0)
    machine.handle(Event.CONNECT, now=100.0)
    assert machine.timer == 102.0 and machine.waiting
    assert machine.due(101.9) == () and machine.state is State.QUEUED
    # Giving it up and a late accept share one timer: together they take at most late_timeout.
    assert machine.due(102.0) == (fw.Action.GIVE_UP,) and machine.timer == 105.0
    machine.handle(Event.TAKEN_BY_WORKER, now=103.0)
    assert machine.timer == 105.0
    machine.handle(Event.ACCEPT, now=104.0)
    assert machine.timer is None and machine.due(1e9) == () and not machine.waiting


def test_credit_is_the_window() -> None:
    machine = Forwarding(Side.WORKER, 3)
    assert [machine.spend() for _ in range(4)] == [True, True, True, False]
    machine.grant(2)
    assert machine.spend() and machine.spend() and not machine.spend()


def test_output_follows_the_state() -> None:
    """What a worker posts waits until the request is known to be its own."""
    worker = Forwarding(Side.WORKER, 4)
    worker.handle(Event.TAKE)
    assert worker.output is fw.Output.HOLD
    worker.handle(Event.ACKED)
    assert worker.output is fw.Output.SEND and worker.runs_app
    optimistic = Forwarding(Side.WORKER, 4)
    optimistic.handle(Event.OPTIMISTIC)
    assert optimistic.output is fw.Output.ACK_FIRST
    optimistic.handle(Event.FLUSHED)
    assert optimistic.output is fw.Output.HOLD
    optimistic.handle(Event.REAPED)
    assert optimistic.output is fw.Output.DROP  # never delivered


# Both machines through the real shells, in random orders ------------------------------------------
class Run:
    """One random connection: its application, client, deployment and schedule of faults."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.kind = self.rng.choice(["get", "post", "upload", "websocket"])
        self.starts: list[int] = []  # when the application started (ms)
        self.deployment = Deployment(
            self.app, worker_timeout=self.rng.choice([0.01, 0.03, 0.2]), window=2,
            max_chunk=4, probe_after=0.02, redis_timeout=self.rng.choice([0.02, 0.1]))

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.starts.append(now_ms())
        rng = self.rng
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            for _ in range(rng.randrange(3)):
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                await send({"type": "websocket.send", "text": "echo"})
            if rng.random() < 0.5:
                await send({"type": "websocket.close", "code": 1000})
            return
        if rng.random() < 0.6:
            while (await receive()).get("more_body"):
                pass
        await asyncio.sleep(rng.choice([0, 0, 0.005, 0.03]))
        if rng.random() < 0.1:
            raise RuntimeError("an application error (expected by the test)")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(rng.randrange(3)):
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            await asyncio.sleep(rng.choice([0, 0.002]))
        await send({"type": "http.response.body", "body": b"end"})

    def client(self) -> tuple[dict[str, Any], Client]:
        if self.kind == "websocket":
            return {**SCOPE, "type": "websocket", "path": "/ws"}, Client(
                {"type": "websocket.connect"},
                *({"type": "websocket.receive", "text": "hi"} for _ in range(3)))
        if self.kind == "upload":
            return {**SCOPE, "method": "POST", "headers": [(b"content-length", b"30")]}, Client(
                *({"type": "http.request", "body": b"x" * 10, "more_body": i < 2}
                  for i in range(3)))
        method = "GET" if self.kind == "get" else "POST"
        return {**SCOPE, "method": method}, Client(
            {"type": "http.request", "body": b"", "more_body": False})

    async def faults(self, relay: asyncio.Task[None]) -> None:
        """Now and then, something goes wrong."""
        rng, deployment = self.rng, self.deployment
        link = deployment.link
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(rng.choice([0, 0.001, 0.005, 0.02]))
            fault = rng.choice(["down", "worker-gone", "edge-gone", "client", "reaped", "full",
                                "lose", "slow-ack", "slow-give-up", "slow-push", "none"])
            if fault == "down":
                link.down = True
                await asyncio.sleep(rng.choice([0.001, 0.02]))
                link.down = False
            elif fault == "worker-gone":
                deployment.edge_watch.gone(deployment.worker_hub.id)
            elif fault == "edge-gone":
                deployment.worker_watch.gone(deployment.edge_hub.id)
            elif fault == "client":
                relay.cancel()
            elif fault in ("reaped", "full"):
                setattr(link, fault, True)
            elif fault == "lose":
                inbox = rng.choice([deployment.edge_hub.inbox, deployment.worker_hub.inbox])
                link.lose.add((inbox, rng.randrange(1, 4)))
            else:
                event = {"slow-ack": deployment.route.hold, "slow-give-up": link.give_ups,
                         "slow-push": link.acked_pushes}.get(fault)
                if event is not None:
                    event.clear()
                    await asyncio.sleep(rng.choice([0.005, 0.05]))
                    event.set()

    async def worker(self) -> None:
        await asyncio.sleep(self.rng.choice([0, 0, 0.005, 0.05]))  # a late take, now and then
        await self.deployment.serve()

    async def __call__(self) -> None:
        deployment = self.deployment
        scope, client = self.client()
        serve = serve_websocket if scope["type"] == "websocket" else serve_http
        relay = asyncio.ensure_future(serve(deployment.edge, KEY, scope, client.receive,
                                            client.send))
        worker = asyncio.ensure_future(self.worker())
        faults = asyncio.ensure_future(self.faults(relay))
        try:
            await _within(asyncio.gather(relay, return_exceptions=True), deployment, "the relay")
            await _within(faults, deployment, "the faults")
            for event in (deployment.route.hold, deployment.link.give_ups,
                          deployment.link.acked_pushes):
                event.set()
            # Every connection ends, whatever happened: the application returns (it was told),
            # and nothing is left behind on either side.
            await _within(asyncio.gather(*deployment.connections, return_exceptions=True),
                          deployment, "the worker's connections")
            await _until_quiet(deployment)
        finally:
            worker.cancel()
            faults.cancel()
            await asyncio.gather(worker, faults, return_exceptions=True)
        assert deployment.edge_hub.peers == {} and deployment.worker_hub.peers == {}
        assert len(self.starts) <= 1, "the request ran twice"
        for raw in deployment.link.sent_connects:
            deadline = decode_connect(raw).deadline_ms
            assert all(start <= deadline + 1 for start in self.starts), "ran after its deadline"


async def _within(awaitable: Any, deployment: Deployment, what: str) -> None:
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait([task], timeout=10)
    if done:
        task.result()
        return
    peers = {side: {conn: (peer.machine.state.value, repr(peer.failure))
                    for conn, peer in hub.peers.items()}
             for side, hub in (("edge", deployment.edge_hub), ("worker", deployment.worker_hub))}
    stuck = [(c.peer.machine.state.value, repr(c.peer.failure), c.gone, c.done,
              [str(frame) for frame in t.get_stack()])
             for c, t in zip(deployment.connection_objects, deployment.connections)
             if not t.done()]
    task.cancel()
    raise AssertionError(f"{what} never ended: {peers} {stuck}")


async def _until_quiet(deployment: Deployment) -> None:
    for _ in range(500):  # a few loop turns: late answers of Redis settle
        if not deployment.edge_hub.peers and not deployment.worker_hub.peers:
            return
        await asyncio.sleep(0.002)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_orders_of_events_keep_the_promises(
        seed: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="channels_distributed.forwarding")
    with contextlib.suppress(PeerLost):  # the edge's server aborts a response that broke
        await Run(seed)()
    defects = [r.getMessage() for r in caplog.records if "no row for" in r.getMessage()]
    assert not defects, defects


def _paths(side: Side) -> dict[State, list[Event]]:
    """For each state of ``side``, the shortest list of events that leads there from IDLE."""
    rows = TABLES[side].rows
    paths: dict[State, list[Event]] = {State.IDLE: []}
    queue = [State.IDLE]
    while queue:
        state = queue.pop(0)
        for (start, event), row in rows.items():
            if start is state and isinstance(row, Row) and row.next not in paths:
                paths[row.next] = [*paths[state], event]
                queue.append(row.next)
    return paths


ROWS = [(side, state, event) for side, table in TABLES.items() for state, event in table.rows]


@pytest.mark.parametrize(("side", "state", "event"), ROWS,
                         ids=[f"{s.value}-{a.value}-{e.value}" for s, a, e in ROWS])
def test_each_row(side: Side, state: State, event: Event) -> None:
    """Every row's state is reachable from IDLE through the table, and the machine does there
    what the row says (an ignore row: nothing)."""
    machine = Forwarding(side, 4, accept_timeout=1.0, late_timeout=1.0)
    for step in _paths(side)[state]:
        machine.handle(step)
    assert machine.state is state
    row = TABLES[side].rows[(state, event)]
    actions = machine.handle(event)
    if isinstance(row, Row):
        assert (machine.state, actions) == (row.next, row.actions)
    else:
        assert (machine.state, actions) == (state, ())


def test_ignore_rows_are_named_so() -> None:
    assert all(isinstance(row, (Row, Ignore)) for table in TABLES.values()
               for row in table.rows.values())
