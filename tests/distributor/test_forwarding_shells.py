"""The edge's relay and a worker's connection, driving the forwarding machine, in memory.

The real ``Edge``, relay (``serve_http``/``serve_websocket``), ``Peer`` and worker
``Connection`` run over ``tests/memlink.py`` (Redis as lists, the presence watch as a set), so
each fault of the lifecycle is reached on purpose in milliseconds: no worker, a worker that
takes the request too late or after it was given up, a late accept for a client that left, a
worker or distributor gone, Redis gone, an exhausted window. The process tests in tests/e2e
check the same guarantees against real Redis servers and processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels_distributed.distributor.relay import serve_http, serve_websocket
from channels_distributed.exceptions import PeerLost
from channels_distributed.forwarding.hub import now_ms
from channels_distributed.protocol import forwarding as fw
from channels_distributed.protocol.envelope import decode_connect
from tests.helpers import wait_for_async
from tests.memlink import KEY, Deployment

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"memory")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
}


class Client:
    """The ASGI server's side of one connection at the edge."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in events:
            self.incoming.put_nowait(event)
        self.sent: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None  # set: send() waits for it (a slow client)

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, event: dict[str, Any]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(event)

    @property
    def status(self) -> int | None:
        for event in self.sent:
            if event["type"] == "http.response.start":
                return int(event["status"])
        return None

    @property
    def body(self) -> bytes:
        return b"".join(e.get("body", b"") for e in self.sent if e["type"] == "http.response.body")


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def http(method: str = "GET", body: bytes = b"") -> tuple[dict[str, Any], Client]:
    scope = {**SCOPE, "method": method}
    return scope, Client({"type": "http.request", "body": body, "more_body": False})


def assert_clean(deployment: Deployment) -> None:
    """Nothing left behind: no peer on either side, nothing queued or held."""
    assert deployment.edge_hub.peers == {}
    assert deployment.worker_hub.peers == {}
    assert deployment.link.queue == [] and deployment.link.processing == []
    assert deployment.edge._waiting == set() and deployment.edge._requests == {}


async def test_hello_world_goes_through_both_shells() -> None:
    deployment = Deployment(hello)
    worker = asyncio.ensure_future(deployment.serve())
    for method in ("GET", "POST"):  # optimistic (acknowledged with the output), then not
        scope, client = http(method)
        await serve_http(deployment.edge, KEY, scope, client.receive, client.send)
        assert (client.status, client.body) == (200, b"hello")
    await asyncio.gather(*deployment.connections)
    assert_clean(deployment)
    worker.cancel()
    await deployment.close()


async def test_no_worker_by_the_deadline_is_503_and_never_runs() -> None:
    deployment = Deployment(hello, worker_timeout=0.05)
    scope, client = http()
    await serve_http(deployment.edge, KEY, scope, client.receive, client.send)
    assert client.status == 503
    assert deployment.link.queue == []  # withdrawn: no worker can take it later
    assert_clean(deployment)


async def test_a_request_taken_after_its_deadline_is_dropped_and_503_at_once() -> None:
    runs: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        runs.append(scope["path"])
        await hello(scope, receive, send)

    deployment = Deployment(app, worker_timeout=0.05)
    deployment.link.give_ups.clear()  # the edge's give-up reaches Redis after the take
    scope, client = http()
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.link.queue, what="the request queued")
    deadline = decode_connect(deployment.link.queue[0]).deadline_ms
    await wait_for_async(lambda: now_ms() > deadline, what="its deadline to pass")
    assert deployment.take()
    deployment.link.give_ups.set()
    await asyncio.wait_for(relay, 5)
    assert client.status == 503 and runs == [] and deployment.expired == 1
    assert_clean(deployment)


async def test_given_up_before_its_acknowledgement_it_never_runs() -> None:
    runs: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        runs.append(scope["path"])

    deployment = Deployment(app, worker_timeout=0.05)
    deployment.route.hold.clear()  # the worker's acknowledgement is slow
    scope, client = http("POST")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    await wait_for_async(lambda: deployment.link.given_up, what="the edge to give it up")
    deployment.route.hold.set()
    await asyncio.wait_for(relay, 5)
    await asyncio.gather(*deployment.connections)
    assert client.status == 503 and runs == []  # told by cd.expired, not after 5 s
    assert_clean(deployment)


async def test_a_late_accept_for_a_client_that_left_resets_the_application() -> None:
    told: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        told.append(await receive())  # the body
        told.append(await receive())  # what comes next: the client is gone

    deployment = Deployment(app)
    deployment.route.hold.clear()
    scope, client = http("POST", b"x")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    relay.cancel()  # the client left while it waited
    await asyncio.gather(relay, return_exceptions=True)
    deployment.link.given_up.clear()  # the mark came after the acknowledgement
    deployment.route.hold.set()
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert told[-1] == {"type": "http.disconnect"}
    assert any(events == [{"type": fw.Event.RESET.value}] for _, _, events in deployment.link.sent)


async def _waiting_app(deployment: Deployment, scope: dict[str, Any], client: Client,
                       serve: Any = serve_http) -> asyncio.Future[None]:
    relay = asyncio.ensure_future(serve(deployment.edge, KEY, scope, client.receive,
                                        client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    await wait_for_async(lambda: deployment.edge_watch.watched, what="the worker accepted")
    return relay


async def _forever(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (await receive())["type"] not in ("http.disconnect", "websocket.disconnect"):
        pass


async def test_a_worker_gone_after_accepting_is_502_at_once() -> None:
    deployment = Deployment(_forever)
    scope, client = http("POST")
    relay = await _waiting_app(deployment, scope, client)
    deployment.edge_watch.gone(deployment.worker_hub.id)
    await asyncio.wait_for(relay, 5)
    assert client.status == 502
    await deployment.close()


async def test_a_worker_gone_closes_a_websocket_with_1011() -> None:
    deployment = Deployment(_forever)
    scope = {**SCOPE, "type": "websocket", "scheme": "ws"}
    client = Client({"type": "websocket.connect"})
    relay = await _waiting_app(deployment, scope, client, serve_websocket)
    deployment.edge_watch.gone(deployment.worker_hub.id)
    await asyncio.wait_for(relay, 5)
    assert client.sent[-1]["type"] == "websocket.close" and client.sent[-1]["code"] == 1011
    await deployment.close()


async def test_a_distributor_gone_tells_the_application_its_client_left() -> None:
    deployment = Deployment(_forever)
    scope, client = http("POST")
    relay = await _waiting_app(deployment, scope, client)
    deployment.worker_watch.gone(deployment.edge_hub.id)
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)  # the app returned
    assert deployment.worker_hub.peers == {}
    relay.cancel()
    await asyncio.gather(relay, return_exceptions=True)


async def test_a_client_gone_mid_exchange_reaches_the_application() -> None:
    deployment = Deployment(_forever)
    scope = {**SCOPE, "method": "POST", "headers": [(b"transfer-encoding", b"chunked")]}
    client = Client({"type": "http.request", "body": b"a", "more_body": True})
    relay = await _waiting_app(deployment, scope, client)
    client.incoming.put_nowait({"type": "http.disconnect"})
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    await asyncio.wait_for(relay, 5)
    assert_clean(deployment)


async def test_redis_gone_before_queueing_is_503() -> None:
    deployment = Deployment(hello)
    deployment.link.down = True
    scope, client = http()
    await serve_http(deployment.edge, KEY, scope, client.receive, client.send)
    assert client.status == 503
    assert_clean(deployment)


async def test_a_request_given_back_meanwhile_delivers_nothing_from_this_worker() -> None:
    deployment = Deployment(hello)
    deployment.link.reaped = True  # a reaper gave it back before the first output's ack
    scope, client = http("GET")
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert deployment.worker_hub.peers == {}
    assert [s for s in deployment.link.sent if s[0] == deployment.edge_hub.inbox] == []
    relay.cancel()
    await asyncio.gather(relay, return_exceptions=True)


async def test_an_exhausted_window_holds_the_application_until_the_client_reads() -> None:
    sent: list[int] = []

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(6):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            sent.append(n)
        await send({"type": "http.response.body", "body": b""})

    deployment = Deployment(stream, window=2)
    scope, client = http("POST")
    client.gate = asyncio.Event()  # the client reads nothing for now
    relay = asyncio.ensure_future(
        serve_http(deployment.edge, KEY, scope, client.receive, client.send))
    await wait_for_async(lambda: deployment.take(), what="the request taken")
    await wait_for_async(lambda: len(sent) == 2, what="the window's two chunks")
    for _ in range(20):  # loop turns: the app stays blocked on credit
        await asyncio.sleep(0)
    assert len(sent) == 2
    client.gate.set()
    await asyncio.wait_for(relay, 5)
    assert client.status == 200 and client.body == b"x" * 6 and len(sent) == 6
    await asyncio.wait_for(asyncio.gather(*deployment.connections), 5)
    assert_clean(deployment)


def _kinds(deployment: Deployment) -> list[str]:
    """The types of the events the worker sent to the edge, in order."""
    inbox = deployment.edge_hub.inbox
    return [str(e["type"]) for to, _, events in deployment.link.sent if to == inbox
            for e in events]


async def test_a_complete_http_response_needs_no_close_after_it() -> None:
    # The edge finishes with the final body and forgets the connection: a cd.close sent after
    # the response (an application that returns a while after it, as Django's does) would be
    # a push nobody reads.
    later = asyncio.Event()

    async def slow_return(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await later.wait()

    for app in (hello, slow_return):
        deployment = Deployment(app)
        worker = asyncio.ensure_future(deployment.serve())
        for method in ("GET", "POST"):
            scope, client = http(method)
            await serve_http(deployment.edge, KEY, scope, client.receive, client.send)
            assert (client.status, client.body) == (200, b"hello")
        later.set()
        await asyncio.gather(*deployment.connections)
        assert "cd.close" not in _kinds(deployment)
        assert_clean(deployment)
        worker.cancel()
        await deployment.close()


async def test_an_application_that_returns_without_a_whole_response_still_says_so() -> None:
    async def half(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    async def nothing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        pass

    for app, status in ((nothing, 500), (half, 200)):
        deployment = Deployment(app)
        worker = asyncio.ensure_future(deployment.serve())
        scope, client = http()
        # A cut response raises PeerLost here: the ASGI server aborts the connection.
        with contextlib.suppress(PeerLost):
            await serve_http(deployment.edge, KEY, scope, client.receive, client.send)
        assert client.status == status
        await asyncio.gather(*deployment.connections)
        assert _kinds(deployment)[-1] == "cd.close"
        worker.cancel()
        await deployment.close()
