"""A spread route key in the status, in memory: the spread read from an edge's card, what the
route reports when the edges agree or differ, and the sub-queues read because a card names them
(the table: test_render.py; with real processes: tests/e2e/test_dist_spread.py)."""

from __future__ import annotations

from typing import Any

from channels_distributed.protocol.spread import sub_queues
from channels_distributed.status.cards import edge_entry, spread_of
from channels_distributed.status.collect import _add_spread, _spread


def _edge(process: str, spread: Any, routes: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": process, "side": "edge", "spread": spread,
            "routes": {key: {"requests": 1} for key in routes}}


def test_the_spread_of_a_card_keeps_only_what_an_edge_can_apply() -> None:
    odd = {"api": 3, "site": 1, "big": 17, "neg": -2, "flag": True, "text": "3", "a~3.1.0": 3}
    assert spread_of(_edge("d-1", odd)) == {"api": 3}
    assert spread_of(_edge("d-1", [["api", 3]])) == {} == spread_of({"id": "d-old"})
    assert edge_entry(_edge("d-1", {"api": 3}), 0.0)["spread"] == {"api": 3}
    assert edge_entry({"id": "d-old"}, 0.0)["spread"] == {}


def test_a_route_says_the_sub_queues_of_the_edges_that_queue_it() -> None:
    edges = [_edge("d-1", {"api": 3}), _edge("d-2", {"api": 3}, routes=("api", "site"))]
    spreads = [spread_of(edge) for edge in edges]
    assert _spread("api", edges, spreads) == [3]
    assert _spread("site", edges, spreads) == []  # queued, by nobody spread
    assert _spread("chat", edges, spreads) == []  # no edge queues it
    # During a change: one edge spreads over 3, one over 2, one queues the key alone.
    edges += [_edge("d-3", {"api": 2}), _edge("d-4", {}, routes=("api",))]
    spreads = [spread_of(edge) for edge in edges]
    assert _spread("api", edges, spreads) == [3, 2, 1]
    # An edge that never saw the key says nothing of it.
    assert _spread("api", [edges[0], _edge("d-5", {})], [{"api": 3}, {}]) == [3]


def test_the_sub_queues_a_card_names_are_read_even_if_the_scan_missed_them() -> None:
    found = {"api": {sub_queues("api", 2)[1]}}
    _add_spread(found, [{"api": 3}, {"api": 3, "web": 2}])
    assert found == {"api": {sub_queues("api", 2)[1], *sub_queues("api", 3)[1:]},
                     "web": set(sub_queues("web", 2)[1:])}
