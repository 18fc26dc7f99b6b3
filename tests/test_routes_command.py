"""What ``channels-distributed routes`` prints, from what it read (``routes.py``), in memory."""

from __future__ import annotations

import argparse

import pytest

from channels_distributed.protocol.overrides import OverrideError, RouteOverrides, new_override
from channels_distributed.routes import _change, _render, _shown, add_routes_arguments

DOCUMENT = RouteOverrides().changed("api", new_override("api", "split", "api=95,api-v2=5"),
                                    "ops@h", 60.0).dumps().encode()
EDGE = {"id": "d-1", "side": "edge", "host": "e1", "pid": 7, "routes_version": 1,
        "overrides": {"api": "split api=95,api-v2=5"},
        "settings_routes": [["^/api/", "api"], ["^/", "site"]]}


def test_the_routes_in_force_and_an_edge_still_on_an_older_version() -> None:
    behind = {**EDGE, "id": "d-2", "host": "e2", "pid": 8, "routes_version": 0, "overrides": {}}
    shown = _shown(DOCUMENT, [EDGE, behind], None)
    assert shown["settings_routes"] == [["^/api/", "api"], ["^/", "site"]]
    assert shown["overrides"]["overrides"]["api"]["split"] == {"api": 95, "api-v2": 5}
    assert shown["refused"] is None
    text = _render(shown)
    assert "  ^/api/                         -> api" in text
    assert "split api=95,api-v2=5" in text and "(by ops@h at 1970-01-01 00:01:00 UTC)" in text
    assert "EDGES: 1 of 2 apply version 1\n  e2 pid 8: version 0" in text


def test_a_refused_document_is_shown_as_refused_with_the_way_out() -> None:
    shown = _shown(b'{"version": 3, "overrides": {"api": {"split": {"api": 0}}}}', [EDGE],
                   [["^/", "site"]])
    assert shown["overrides"] is None and "whole number from 1" in shown["refused"]
    assert shown["settings_routes"] == [["^/", "site"]]  # given (manage.py): the settings'
    assert "OVERRIDES: REFUSED by the edges" in _render(shown)
    assert "routes clear --all" in _render(shown)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_routes_arguments(parser)
    return parser.parse_args(argv)


def test_each_action_is_checked_before_anything_is_read() -> None:
    assert _change(_args()) is None and _args("--json").json
    assert _args("set", "api", "api=1", "--json").json
    change, repair, targets = _change(_args("clear", "--all"))  # type: ignore[misc]
    assert repair and change(RouteOverrides(version=4), "x", 0.0).version == 5 and targets == ()
    # The keys a change sends requests to: the command warns of those no worker serves.
    assert _change(_args("set", "api", "api=9,v2=1"))[2] == ("api", "v2")  # type: ignore[index]
    assert _change(_args("drain", "api"))[2] == ()  # type: ignore[index]
    assert _change(_args("clear", "api"))[2] == ("api",)  # type: ignore[index]
    for argv in (("clear",), ("clear", "api", "--all"), ("set", "api", "api=0"),
                 ("switch", "api", "api"), ("drain", "a b")):
        with pytest.raises(OverrideError):
            _change(_args(*argv))
