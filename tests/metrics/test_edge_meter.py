"""The edge's metrics in memory: the real relay and ``MeteredEdge`` over ``tests/memlink.py``,
each outcome counted by route key, kind, status and cause; and the route label's bound. The
process tests (tests/e2e/test_dist_metrics.py) check the same against real processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from scrape import Samples, parse, value

from channels_distributed.distributor.relay import serve_http, serve_websocket
from channels_distributed.metrics import edge as edge_metrics
from channels_distributed.metrics import pending
from channels_distributed.metrics.edge import EdgeMeter, MeteredEdge
from channels_distributed.metrics.exposition import render
from channels_distributed.metrics.families import OTHER, RouteLabels
from tests.distributor.test_forwarding_shells import SCOPE, Client, hello, http
from tests.memlink import KEY, Deployment, MemoryEdge

E = "channels_distributed_edge_"


class MeteredMemoryEdge(MeteredEdge, MemoryEdge):
    """The metered edge over the memory link."""


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Iterator[EdgeMeter]:
    # This process's meter, without switching metrics on for the rest of the suite.
    made = EdgeMeter()
    monkeypatch.setattr(edge_metrics, "_meter", made)
    monkeypatch.setattr(pending, "_FLUSHES", [*pending._FLUSHES, made.flush])
    yield made


def metered(deployment: Deployment) -> MeteredMemoryEdge:
    edge = MeteredMemoryEdge(deployment.config, deployment.edge_hub,
                             watch=deployment.edge_watch)
    edge.link = deployment.link
    deployment.edge = edge
    return edge


def page() -> Samples:
    return parse(render(every_process=False).decode())


def grew(before: Samples, name: str, **labels: str) -> float:
    after = page()
    return value(after, name, **labels) - (value(before, name, **labels)
                                           if (name, frozenset(labels.items())) in before
                                           else 0.0)


async def test_served_and_unserved_requests(meter: EdgeMeter) -> None:
    deployment = Deployment(hello, worker_timeout=0.2)
    edge = metered(deployment)
    serve = meter.serving(serve_http, "http")
    before = page()
    scope, client = http()
    await serve(edge, KEY, scope, client.receive, client.send)  # nobody takes it: 503
    assert client.status == 503
    worker = asyncio.ensure_future(deployment.serve())
    for _ in range(3):
        scope, client = http()
        await serve(edge, KEY, scope, client.receive, client.send)
        assert client.status == 200
    worker.cancel()
    assert grew(before, f"{E}requests_total", route=KEY, kind="http", status="200") == 3
    assert grew(before, f"{E}requests_total", route=KEY, kind="http", status="503") == 1
    # The memory link always has a worker registered: all busy.
    assert grew(before, f"{E}failures_total", route=KEY, cause="busy") == 1
    assert grew(before, f"{E}queue_wait_seconds_count", route=KEY) == 3
    assert grew(before, f"{E}request_duration_seconds_count", route=KEY, kind="http") == 4
    assert value(page(), f"{E}open_connections") == value(before, f"{E}open_connections")
    await deployment.close()


async def test_a_websocket_refused_by_the_edge_counts_as_its_cause(meter: EdgeMeter) -> None:
    deployment = Deployment(hello, worker_timeout=0.2)
    edge = metered(deployment)
    before = page()
    client = Client({"type": "websocket.connect"})
    await meter.serving(serve_websocket, "websocket")(edge, KEY, {**SCOPE, "type": "websocket"},
                                                      client.receive, client.send)
    # The client saw the handshake accepted and closed at once (1013).
    assert [e["type"] for e in client.sent] == ["websocket.accept", "websocket.close"]
    assert grew(before, f"{E}requests_total", route=KEY, kind="websocket", status="503") == 1
    await deployment.close()


async def test_a_client_that_leaves_first_has_no_status(meter: EdgeMeter) -> None:
    deployment = Deployment(hello)
    edge = metered(deployment)
    before = page()
    client = Client({"type": "http.disconnect"})
    await meter.serving(serve_http, "http")(edge, KEY, dict(SCOPE), client.receive,
                                            client.send)
    assert client.sent == []
    assert grew(before, f"{E}requests_total", route=KEY, kind="http", status="none") == 1
    await deployment.close()


async def test_a_connection_refused_before_routing_is_not_counted(meter: EdgeMeter) -> None:
    deployment = Deployment(hello)
    before = page()
    client = Client({"type": "websocket.connect"})
    await meter.serving(serve_websocket, "websocket")(
        deployment.edge, None, {**SCOPE, "type": "websocket"}, client.receive, client.send)
    assert page() == before
    await deployment.close()


def test_route_labels_are_bounded() -> None:
    labels = RouteLabels(limit=2)
    assert [labels(k) for k in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]


def test_keys_past_the_bound_share_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = EdgeMeter()
    monkeypatch.setattr(meter, "_labels", RouteLabels(limit=1))
    first, second, third = (meter.route(k) for k in ("k1", "k2", "k3"))
    assert first.label == "k1" and second.label == third.label == OTHER
    assert second is third
    assert set(meter._routes) == {"k1", OTHER}  # the cache does not grow with the keys


def test_the_status_a_client_got() -> None:
    async def run(*events: dict[str, Any]) -> str:
        sent: list[dict[str, Any]] = []

        async def send(event: dict[str, Any]) -> None:
            sent.append(event)

        watched = edge_metrics._Watched(send)
        for event in events:
            await watched(event)
        assert sent == list(events)
        return watched.status

    cases = {
        ("http.response.start",): "204",
        ("websocket.accept",): "101",
        ("websocket.close",): "403",
        ("websocket.http.response.start",): "204",
        ("websocket.accept", "websocket.close"): "101",
        (): "none",
    }
    for kinds, status in cases.items():
        events = [{"type": k, "status": 204} for k in kinds]
        assert asyncio.run(run(*events)) == status, kinds
