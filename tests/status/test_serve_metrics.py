"""The status server's ``/metrics`` (channels_distributed/status/metrics.py): per route key, the
figures an autoscaler reads, parsed back with prometheus_client's own parser; counters that only
grow when an edge leaves."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from statuses import route, status, worker

from channels_distributed.status.history import History
from channels_distributed.status.httpd import Request
from channels_distributed.status.metrics import GAUGES, RouteCollector, exposition
from channels_distributed.status.serve import StatusServer

NAMES = sorted(f"channels_distributed_route_{name}" for name in GAUGES)


def _scrape(latest: Mapping[str, Any] | None, history: History,
            healthy: bool = True) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    export = exposition(RouteCollector(lambda: latest, history.totals, lambda: healthy))
    assert export is not None
    body, content_type = export()
    assert content_type.startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def test_per_route_gauges_of_the_latest_status() -> None:
    latest = status(10.0, {
        "api": route(queued=6, oldest_s=2.5, workers=[worker("w1", in_flight=3, concurrency=4),
                                                      worker("w2", in_flight=1, concurrency=4)]),
        "idle": route()})
    history = History()
    history.add(latest)
    found = _scrape(latest, history)
    api = (("route", "api"),)
    assert {name: found[(name, api)] for name in NAMES} == {
        "channels_distributed_route_concurrency": 8.0,
        "channels_distributed_route_in_flight": 4.0,
        "channels_distributed_route_oldest_seconds": 2.5,
        "channels_distributed_route_queued": 6.0,
        "channels_distributed_route_saturation": 1.25,  # (6 + 4) / 8
        "channels_distributed_route_workers": 2.0,
    }
    idle = (("route", "idle"),)
    # No worker: saturation is the queue over 1; no queue: the oldest is 0 s old.
    assert found[("channels_distributed_route_saturation", idle)] == 0.0
    assert found[("channels_distributed_route_oldest_seconds", idle)] == 0.0
    assert found[("channels_distributed_status_up", ())] == 1.0


def test_counters_sum_the_edges_and_never_drop() -> None:
    history = History()
    history.add(status(1.0, {"api": route(requests=50, served=40,
                                          failures={"busy": 4, "worker_lost": 1})}))
    # An edge stopped: the sums drop; the counters keep what was counted.
    last = status(2.0, {"api": route(requests=20, served=18,
                                     failures={"busy": 2, "worker_lost": 1})})
    history.add(last)
    found = _scrape(last, history)
    api = (("route", "api"),)
    assert found[("channels_distributed_route_requests_total", api)] == 50.0
    assert found[("channels_distributed_route_served_total", api)] == 40.0
    failures = {labels: value for (name, labels), value in found.items()
                if name == "channels_distributed_route_failures_total"}
    assert failures == {
        (("cause", "busy"), ("route", "api"), ("status", "503")): 4.0,
        (("cause", "worker_lost"), ("route", "api"), ("status", "502")): 1.0,
    }


def test_up_is_zero_when_collecting_fails() -> None:
    found = _scrape(None, History(), healthy=False)
    assert found == {("channels_distributed_status_up", ()): 0.0}


def test_each_server_has_a_registry_of_its_own() -> None:
    # Two servers in one process (or one beside the package's other metrics) export each
    # their own: nothing is registered in prometheus_client's global registry.
    from prometheus_client import REGISTRY

    before = set(REGISTRY._names_to_collectors)
    for _ in range(2):
        assert exposition(RouteCollector(lambda: None, dict, lambda: True)) is not None
    assert set(REGISTRY._names_to_collectors) == before


async def _answer_status() -> Mapping[str, Any]:
    return status(1.0)


def test_without_prometheus_client_metrics_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import prometheus_client` fail, as where it is not installed.
    for name in [name for name in sys.modules if name.startswith("prometheus_client")]:
        monkeypatch.setitem(sys.modules, name, None)
    server = StatusServer(_answer_status)
    answer = server.handle(Request("GET", "/metrics", {}, {}))
    assert answer.status == 501
    assert b"pip install 'channels-distributed[metrics]'" in answer.body
    assert server.handle(Request("GET", "/", {}, {})).status == 200  # the page still is
