"""The table ``channels-distributed status`` prints, and the shipped JSON Schema, in memory."""

from __future__ import annotations

import configparser
import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from status_schema import strict_validator, validate

from channels_distributed.status import render, schema
from channels_distributed.status.render import duration

ROOT = Path(__file__).resolve().parents[2]


def _process(**fields: Any) -> dict[str, Any]:
    made = {"id": "w-a-1-x", "host": "a", "pid": 1, "started": 1.0e9, "up_s": 7260.0,
            "version": "0.1.0", "protocol": 2, "build": "compiled", "state": "serving"}
    made.update(fields)
    return made


def _worker(**fields: Any) -> dict[str, Any]:
    return _process(**{"concurrency": 8, "in_flight": 0, "served": 0, "errors": 0, **fields})


STATUS: dict[str, Any] = {
    "schema_version": 1, "generated_at": 1.8e9, "prefix": "asgi",
    "routes": {
        "api": {"queued": 12, "oldest_s": 3.25, "taken": 1, "concurrency": 16, "in_flight": 9,
                "saturation": 1.312, "requests": 300, "served": 280,
                "failures": {"busy": 2, "no_worker": 3},
                "workers": [_worker(in_flight=5, served=200, errors=1),
                            _worker(id="w-b-2-x", host="b", pid=2, in_flight=4, served=80)]},
        "site": {"queued": 0, "oldest_s": None, "taken": 0, "concurrency": 8, "in_flight": 1,
                 "saturation": 0.125, "requests": 20, "served": 20, "failures": {},
                 "workers": [_worker(in_flight=1, served=20)]},
    },
    "edges": [_process(id="d-e-9-x", host="e", pid=9, up_s=42.0, open=3, requests=320,
                       served=300, failures={"busy": 2, "no_worker": 3, "worker_lost": 4})],
    "layer": {"channels": [{"name": "chat", "queued": 5}], "groups": [
        {"name": "lobby", "members": 7}], "scanned": 40, "complete": True},
}


def _line(text: str, first: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.split()[:1] == [first]]
    return line.split()


def test_the_example_is_what_collect_returns() -> None:
    validate(STATUS)


def test_a_line_per_route_key() -> None:
    text = render(STATUS)
    assert text.splitlines()[0].endswith("2 route keys, 2 workers, 1 edge")
    assert _line(text, "ROUTE") == ["ROUTE", "KEY", "QUEUED", "OLDEST", "TAKEN", "WORKERS",
                                    "IN", "FLIGHT", "SATURATION", "SERVED", "FAILURES"]
    assert _line(text, "api") == ["api", "12", "3.2s", "1", "2", "9/16", "1.31", "280", "busy",
                                  "2,", "no_worker", "3"]
    assert _line(text, "site") == ["site", "0", "-", "0", "1", "1/8", "0.12", "20", "-"]


def test_a_line_per_worker_its_route_keys_summed() -> None:
    text = render(STATUS)
    assert "WORKERS" in text.splitlines()
    assert _line(text, "a") == ["a", "1", "api,", "site", "6/8", "220", "1", "2h01m", "0.1.0",
                                "compiled", "serving"]
    assert _line(text, "b") == ["b", "2", "api", "4/8", "80", "0", "2h01m", "0.1.0",
                                "compiled", "serving"]


def test_a_line_per_edge_with_its_503s_and_502s() -> None:
    lines = render(STATUS).splitlines()
    edges = lines[lines.index("EDGES") + 1:]
    assert edges[0].split() == ["HOST", "PID", "OPEN", "REQUESTS", "SERVED", "503", "502",
                                "FAILURES", "UP", "VERSION", "STATE", "ROUTES"]
    assert edges[1].split() == ["e", "9", "3", "320", "300", "5", "4", "busy", "2,",
                                "no_worker", "3,", "worker_lost", "4", "42s", "0.1.0",
                                "compiled", "serving", "v0", "settings"]


def test_the_layer() -> None:
    text = render(STATUS)
    assert "LAYER: 40 keys under the prefix, all scanned" in text
    assert _line(text, "chat") == ["chat", "5"] and _line(text, "lobby") == ["lobby", "7"]
    partial = copy.deepcopy(STATUS)
    partial["layer"].update(complete=False, channels=[], groups=[])
    text = render(partial)
    assert "40 keys scanned, not all of them" in text and "--scan-limit" in text
    assert "No message waits in a channel, and no group has members." in text


def test_nothing_to_show_says_where_it_looked() -> None:
    empty = {**STATUS, "routes": {}, "edges": [], "layer": {
        "channels": [], "groups": [], "scanned": 0, "complete": True}}
    text = render(empty)
    assert "0 route keys, 0 workers, 0 edges" in text
    assert "No route key: no live worker or edge under prefix 'asgi'" in text
    assert "WORKERS" not in text and "EDGES" not in text


def test_columns_line_up() -> None:
    lines = render(STATUS).splitlines()
    header = lines.index(next(line for line in lines if line.startswith("ROUTE KEY")))
    table = lines[header:header + 3]
    # Right-aligned figures: each column ends where its header ends.
    end = table[0].index("QUEUED") + len("QUEUED")
    assert {row[:end].rstrip()[-2:] for row in table[1:]} == {"12", " 0"}


def _spread_status(counts: list[int], *edges: dict[str, int]) -> dict[str, Any]:
    status = copy.deepcopy(STATUS)
    status["routes"]["api"]["spread"] = counts
    status["routes"]["site"]["spread"] = []
    status["edges"] = [{**status["edges"][0], "id": f"d-e-{pid}-x", "pid": pid, "spread": spread,
                        "routes_version": 0, "overrides": {}}
                       for pid, spread in enumerate(edges, 9)]
    return status


def test_the_table_shows_a_spread_route_key_and_the_edges_spread() -> None:
    status = _spread_status([3], {"api": 3})
    validate(status)
    text = render(status)
    assert _line(text, "api")[:5] == ["api", "(3", "sub-queues)", "12", "3.2s"]
    assert _line(text, "site")[:2] == ["site", "0"]  # not spread: as before
    lines = text.splitlines()
    edges = lines[lines.index("EDGES") + 1:]
    assert edges[1].split()[-5:] == ["v0", "settings;", "spread", "api", "3"]
    # The columns stay lined up: QUEUED ends under its header on every route line.
    header = next(line for line in lines if line.startswith("ROUTE KEY"))
    end = header.index("QUEUED") + len("QUEUED")
    assert [line[:end].split()[-1] for line in lines[3:5]] == ["12", "0"]


def test_the_table_shows_every_count_when_edges_differ() -> None:
    status = _spread_status([3, 1], {"api": 3}, {})
    status["edges"][0]["overrides"] = {"site": "drain"}
    validate(status)
    text = render(status)
    assert _line(text, "api")[:5] == ["api", "(3/1", "sub-queues,", "edges", "differ)"]
    lines = text.splitlines()
    edges = lines[lines.index("EDGES") + 1:]
    assert edges[1].split()[-5:] == ["site:", "drain;", "spread", "api", "3"]
    assert edges[2].split()[-2:] == ["v0", "settings"]


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0s"), (59.9, "59s"), (61, "1m01s"),
                                                 (7260, "2h01m"), (3 * 86400 + 3600, "3d01h")])
def test_durations(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_the_schema_is_a_valid_json_schema_that_says_its_version() -> None:
    loaded = schema()
    jsonschema.Draft202012Validator.check_schema(loaded)
    assert loaded["properties"]["schema_version"] == {"const": 1}
    assert {"routes", "edges", "schema_version"} <= set(loaded["required"])


def test_the_schema_refuses_what_a_reader_could_not_rely_on() -> None:
    for broken in ({**STATUS, "schema_version": 2},
                   {**STATUS, "routes": {"api": {**STATUS["routes"]["api"], "queued": "12"}}},
                   {**STATUS, "edges": [{"id": "d"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)
    # Fields added within version 1 pass the shipped schema: readers ignore what they do not
    # know (the strict form of the tests refuses them: each one is documented first).
    grown = {**STATUS, "workers": []}
    jsonschema.Draft202012Validator(schema()).validate(grown)
    with pytest.raises(jsonschema.ValidationError, match="workers"):
        strict_validator().validate(grown)


def test_the_schema_ships_in_the_package() -> None:
    """setup.cfg's package_data names it (tests/smoke checks an installed wheel has it)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "status/schema.json" in config["options.package_data"]["channels_distributed"]
