"""The status page's history (channels_distributed/status/history.py), in memory: rates from the
processes' counters, never negative, totals that only grow, and memory that stays bounded."""

from __future__ import annotations

from statuses import route, status, worker

from channels_distributed.status.history import FIELDS, History


def _samples(history: History, key: str) -> list[dict[str, object]]:
    return [dict(zip(FIELDS, row)) for row in history.as_json()["routes"][key]]


def test_rates_are_differences_over_the_time_between_statuses() -> None:
    history = History()
    history.add(status(100.0, {"api": route(queued=3, requests=10, served=8,
                                            failures={"busy": 1, "worker_lost": 0},
                                            workers=[worker("w1", served=5)])}))
    history.add(status(102.0, {"api": route(queued=7, requests=30, served=20,
                                            failures={"busy": 5, "no_worker": 2,
                                                      "worker_lost": 2},
                                            workers=[worker("w1", served=13)])}))
    first, second = _samples(history, "api")
    # The first status has nothing to be diffed against: it gives the queue, no rate.
    assert first == {"t": 100.0, "queued": 3, "requests_s": None, "served_s": None,
                     "e503_s": None, "e502_s": None}
    # Over 2 s: 20 requests, 8 served by w1, 4 + 2 answered 503, 2 answered 502.
    assert second == {"t": 102.0, "queued": 7, "requests_s": 10.0, "served_s": 4.0,
                      "e503_s": 3.0, "e502_s": 1.0}


def test_a_worker_seen_first_adds_nothing_and_one_gone_takes_nothing_away() -> None:
    history = History()
    history.add(status(1.0, {"api": route(workers=[worker("w1", served=100)])}))
    # w2 served 500 before this status saw it: none of that was served in this second.
    history.add(status(2.0, {"api": route(workers=[worker("w1", served=103),
                                                   worker("w2", served=500)])}))
    history.add(status(3.0, {"api": route(workers=[worker("w2", served=502)])}))
    assert [s["served_s"] for s in _samples(history, "api")] == [None, 3.0, 2.0]


def test_an_edge_leaving_never_makes_a_rate_negative_nor_a_total_drop() -> None:
    history = History()
    history.add(status(1.0, {"api": route(requests=100, served=90, failures={"busy": 10})}))
    history.add(status(2.0, {"api": route(requests=130, served=110, failures={"busy": 12})}))
    # One of the edges stopped: its counters left with its card, the sums drop.
    history.add(status(3.0, {"api": route(requests=40, served=35, failures={"busy": 1})}))
    history.add(status(4.0, {"api": route(requests=45, served=39, failures={"busy": 3})}))
    samples = _samples(history, "api")
    assert [s["requests_s"] for s in samples] == [None, 30.0, 0.0, 5.0]
    assert [s["e503_s"] for s in samples] == [None, 2.0, 0.0, 2.0]
    totals = history.totals()["api"]
    # Counted from the first values seen, plus every increase: 100 + 30 + 5 and so on.
    assert (totals.requests, totals.served, totals.failures) == (135, 114, {"busy": 14})


def test_samples_older_than_the_window_are_dropped() -> None:
    history = History(window=10.0, interval=1.0)
    for t in range(100):
        history.add(status(float(t), {"api": route(queued=t)}))
    kept = _samples(history, "api")
    assert [s["t"] for s in kept] == [float(t) for t in range(89, 100)]


def test_samples_are_bounded_in_number_whatever_their_times() -> None:
    # Statuses closer together than the interval cannot make a route's samples grow past
    # window / interval + 1.
    history = History(window=10.0, interval=1.0)
    for n in range(1000):
        history.add(status(n / 1000, {"api": route(queued=n)}))
    assert len(history.as_json()["routes"]["api"]) == 11


def test_a_route_no_status_names_for_a_window_is_forgotten() -> None:
    history = History(window=10.0, interval=1.0)
    history.add(status(0.0, {"old": route(), "api": route()}))
    for t in range(1, 12):
        history.add(status(float(t), {"api": route()}))
    assert set(history.as_json()["routes"]) == {"api"}
    assert set(history.totals()) == {"api"}


def test_routes_past_the_bound_are_left_out_and_named() -> None:
    history = History(max_routes=2)
    history.add(status(1.0, {"a": route(), "b": route(), "c": route()}))
    document = history.as_json()
    assert set(document["routes"]) == {"a", "b"}
    assert document["left_out"] == ["c"]


def test_since_gives_only_newer_samples() -> None:
    history = History()
    for t in (1.0, 2.0, 3.0):
        history.add(status(t, {"api": route(queued=int(t))}))
    newer = history.as_json(since=2.0)
    assert [row[0] for row in newer["routes"]["api"]] == [3.0]
    assert newer["fields"] == list(FIELDS)
    assert newer["window_s"] == 300.0


def test_the_same_status_twice_adds_one_sample() -> None:
    history = History()
    history.add(status(5.0, {"api": route(requests=1)}))
    history.add(status(5.0, {"api": route(requests=9)}))
    assert len(_samples(history, "api")) == 1
