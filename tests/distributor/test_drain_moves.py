"""A drain at the edge, in memory (``tests/memlink.py``): each race of a move reached on purpose.

The edge's own queued requests on a drained key move to the key it is drained into (the same
entry, so the same deadline) or end 503; one a worker took already is left to run; one whose
deadline comes while it is being moved is given up as a request nobody took (503), never pushed
again and never run. tests/e2e/test_dist_routes.py checks the same under load with real
processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.distributor.relay import serve_http, serve_websocket
from channels_distributed.protocol.overrides import RouteOverrides, new_override
from tests.distributor.test_forwarding_shells import SCOPE, Client, hello, http
from tests.helpers import wait_for_async
from tests.memlink import KEY, Deployment


def _recording(runs: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        runs.append(scope["path"])
        await hello(scope, receive, send)

    return app


def _drain(deployment: Deployment, into: str | None) -> None:
    document = RouteOverrides().changed(KEY, new_override(KEY, "drain", into), "t", 0.0)
    assert deployment.edge.routing.apply(document.dumps().encode())


def _take_out_in_memory(deployment: Deployment, gate: asyncio.Event | None = None) -> None:
    """The mover's LREM on the memory link; with ``gate``, its answer waits for it."""
    async def take_out(queue: str, entry: bytes) -> bool:
        removed = entry in deployment.link.queue
        if removed:
            deployment.link.queue.remove(entry)
        if gate is not None:
            await gate.wait()
        return removed

    deployment.edge._mover._take_out = take_out  # type: ignore[method-assign]


def _start(deployment: Deployment) -> tuple[Client, asyncio.Future[None]]:
    scope, client = http("POST")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    return client, relay


def _retry_after(client: Client) -> bytes | None:
    start = next(e for e in client.sent if e["type"] == "http.response.start")
    return dict(start["headers"]).get(b"retry-after")


async def test_a_queued_request_moves_with_its_entry_and_runs_once_on_the_new_key() -> None:
    runs: list[str] = []
    deployment = Deployment(_recording(runs))
    _take_out_in_memory(deployment)
    client, relay = _start(deployment)
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    _drain(deployment, "other")
    deployment.edge._mover.sweep()
    await wait_for_async(lambda: len(deployment.link.sent_connects) == 2, what="the move")
    first, moved = deployment.link.sent_connects
    assert moved == first  # the same entry: the same deadline, the same connection
    [(queue, state, _)] = deployment.edge._requests.values()
    keys = deployment.edge_hub.keys
    assert (queue, state) == (keys.queue("other"), keys.state("other", state.rsplit(":")[-1]))
    assert deployment.take()
    await asyncio.wait_for(relay, 5)
    await asyncio.gather(*deployment.connections)
    assert client.status == 200 and runs == ["/"]
    assert deployment.link.given_up == set()
    await deployment.close()


async def test_drained_with_nowhere_to_go_a_queued_request_ends_503_unrun() -> None:
    runs: list[str] = []
    deployment = Deployment(_recording(runs))
    _take_out_in_memory(deployment)
    client, relay = _start(deployment)
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    _drain(deployment, None)
    deployment.edge._mover.sweep()
    await asyncio.wait_for(relay, 5)
    assert client.status == 503 and _retry_after(client) == b"1"
    assert deployment.take() is False and runs == []
    assert deployment.edge.figures.route(KEY).failures == {"drained": 1}
    assert deployment.edge._requests == {} and deployment.edge._mover._moves == {}
    await deployment.close()


async def test_a_new_request_for_a_key_drained_with_nowhere_to_go_is_503_unqueued() -> None:
    deployment = Deployment(hello)
    _drain(deployment, None)
    client, relay = _start(deployment)
    await asyncio.wait_for(relay, 5)
    assert client.status == 503 and _retry_after(client) == b"1"
    assert deployment.link.sent_connects == []
    assert deployment.edge.figures.route(KEY).failures == {"drained": 1}
    await deployment.close()


async def test_a_request_a_worker_took_is_left_to_run_and_never_marked_given_up() -> None:
    runs: list[str] = []
    deployment = Deployment(_recording(runs))
    _take_out_in_memory(deployment)
    client, relay = _start(deployment)
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    assert deployment.take()  # taken, its accept not yet at the edge
    _drain(deployment, "other")
    deployment.edge._mover.sweep()
    await asyncio.wait_for(relay, 5)
    await asyncio.gather(*deployment.connections)
    assert client.status == 200 and runs == ["/"]
    assert len(deployment.link.sent_connects) == 1 and deployment.link.given_up == set()
    await deployment.close()


async def test_a_deadline_during_the_move_is_503_never_pushed_again_never_run() -> None:
    runs: list[str] = []
    deployment = Deployment(_recording(runs), worker_timeout=0.1)
    gate = asyncio.Event()
    _take_out_in_memory(deployment, gate)  # taken out at once, the answer held
    client, relay = _start(deployment)
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    _drain(deployment, "other")
    deployment.edge._mover.sweep()
    # The deadline comes: its give-up finds the queue empty (the move took the entry out).
    await wait_for_async(lambda: deployment.link.given_up, what="the give-up under way")
    gate.set()
    await asyncio.wait_for(relay, 5)
    # 503 as for a request nobody took, at once: not 502 after the late accept's wait.
    assert client.status == 503
    assert deployment.edge.figures.route(KEY).failures == {"busy": 1}
    assert len(deployment.link.sent_connects) == 1 and deployment.take() is False
    assert runs == [] and deployment.edge._mover._moves == {}
    await deployment.close()


async def test_a_websocket_for_a_key_drained_with_nowhere_to_go_is_closed_with_1013() -> None:
    deployment = Deployment(hello)
    _drain(deployment, None)
    client = Client({"type": "websocket.connect"})
    scope = {**SCOPE, "type": "websocket", "scheme": "ws"}
    await asyncio.wait_for(
        serve_websocket(deployment.edge, KEY, scope, client.receive, client.send), 5)
    assert [e["type"] for e in client.sent] == ["websocket.accept", "websocket.close"]
    assert client.sent[-1]["code"] == 1013 and deployment.link.sent_connects == []
    assert deployment.edge.figures.route(KEY).failures == {"drained": 1}
    await deployment.close()


async def test_a_drain_lifted_during_the_move_puts_the_request_back_on_its_key() -> None:
    runs: list[str] = []
    deployment = Deployment(_recording(runs))
    gate = asyncio.Event()
    _take_out_in_memory(deployment, gate)
    client, relay = _start(deployment)
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    _drain(deployment, None)
    deployment.edge._mover.sweep()
    await wait_for_async(lambda: not deployment.link.queue, what="the request taken out")
    assert deployment.edge.routing.apply(None)  # cleared before the move's answer came
    gate.set()
    await wait_for_async(lambda: deployment.link.queue, what="the request queued again")
    [(queue, _, _)] = deployment.edge._requests.values()
    assert queue == deployment.edge_hub.keys.queue(KEY)
    assert deployment.take()
    await asyncio.wait_for(relay, 5)
    await asyncio.gather(*deployment.connections)
    assert client.status == 200 and runs == ["/"]
    await deployment.close()
