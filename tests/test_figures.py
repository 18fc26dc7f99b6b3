"""What a process tells operators (``figures.py``), in memory: the cards' fields, counted per
route key, and the causes a client's 503 or 502 is counted under."""

from __future__ import annotations

import json
import os
import socket

from channels_distributed.figures import (
    CAUSES,
    STATUS_OF,
    EdgeFigures,
    WorkerFigures,
    host_name,
)
from channels_distributed.version import __version__


def test_a_worker_card_sums_its_routes() -> None:
    figures = WorkerFigures("w-x", "worker", concurrency=8, channels=("tasks",))
    figures.route("api").in_flight += 2
    figures.route("api").served += 5
    figures.route("site").served += 1
    figures.route("site").errors += 1
    card = json.loads(json.dumps(figures.card()))  # what Redis holds: plain JSON
    assert card["in_flight"] == 2 and card["served"] == 6 and card["errors"] == 1
    assert card["routes"] == {"api": {"in_flight": 2, "served": 5, "errors": 0},
                              "site": {"in_flight": 0, "served": 1, "errors": 1}}
    assert card["concurrency"] == 8 and card["channels"] == ["tasks"]
    assert card["pid"] == os.getpid() and card["host"] == host_name()
    assert card["version"] == __version__ and card["state"] == "starting"
    assert card["at"] >= card["started"]


def test_an_edge_card_counts_failures_by_cause_per_route_and_in_all() -> None:
    figures = EdgeFigures("d-x", "edge", worker_timeout=5.0)
    figures.route("api").requests += 3
    figures.route("api").served += 1
    assert figures.failed("api", "busy") == 1
    assert figures.failed("api", "busy") == 2
    figures.failed("site", "no_worker")
    card = figures.card()
    assert card["failures"] == {"busy": 2, "no_worker": 1}
    assert card["routes"]["api"] == {"requests": 3, "served": 1, "failures": {"busy": 2}}
    assert card["requests"] == 3 and card["served"] == 1 and card["worker_timeout"] == 5.0


def test_an_edge_card_says_the_keys_it_spreads() -> None:
    figures = EdgeFigures("d-x", "edge")
    assert figures.card()["spread"] == {}
    figures.spread = {"api": 3}
    card = json.loads(json.dumps(figures.card()))
    assert card["spread"] == {"api": 3}


def test_an_edge_keeps_a_bounded_number_of_route_keys() -> None:
    figures = EdgeFigures("d-x", "edge")
    for number in range(2500):  # a route template expanding to a key per client
        figures.route(f"k{number}").requests += 1
    assert len(figures.routes) <= 1001


def test_every_cause_has_the_status_its_client_got() -> None:
    assert CAUSES == ("no_worker", "busy", "queue_full", "redis", "drained", "worker_lost")
    assert {STATUS_OF[c] for c in CAUSES} == {502, 503} and STATUS_OF["worker_lost"] == 502


def test_the_host_name_is_fit_for_keys_and_short(monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(socket, "gethostname", lambda: "web_1 {prod}" + "x" * 60)
    name = host_name()
    assert len(name) <= 40 and name.startswith("web-1-prod-")
    assert all(c.isalnum() or c in ".-" for c in name)
    monkeypatch.setattr(socket, "gethostname", lambda: "{}")
    assert host_name() == "host"
