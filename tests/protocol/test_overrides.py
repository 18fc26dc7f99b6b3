"""The route overrides' document: what an edge applies, what it refuses, where a key goes."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from channels_distributed.protocol.overrides import (
    MAX_HOPS,
    MAX_OVERRIDES,
    Override,
    OverrideError,
    Picker,
    RouteOverrides,
    new_override,
    parse_document,
)


def _document(overrides: dict[str, Any], version: int = 1, **more: Any) -> str:
    return json.dumps({"version": version, "overrides": overrides, **more})


def test_no_document_is_no_override() -> None:
    assert parse_document(None) == RouteOverrides()
    assert parse_document(None).version == 0


def test_a_document_written_by_the_command_reads_back_the_same() -> None:
    document = RouteOverrides()
    for key, kind, argument in (("api", "split", "api=95,api-v2=5"), ("old", "switch", "new"),
                                ("legacy", "drain", None), ("batch", "drain", "api")):
        document = document.changed(key, new_override(key, kind, argument), "ops@h", 10.0)
    assert document.version == 4
    assert parse_document(document.dumps()) == document
    assert parse_document(document.dumps().encode()) == document
    assert {k: o.describe() for k, o in document.overrides.items()} == {
        "api": "split api=95,api-v2=5", "old": "switch to new", "legacy": "drain (503)",
        "batch": "drain into api"}


def test_each_change_raises_the_version_by_one_and_clear_keeps_counting() -> None:
    document = RouteOverrides().changed("a", new_override("a", "switch", "b"), "x", 1.0)
    document = document.changed("a", None, "y", 2.0)
    assert (document.version, dict(document.overrides)) == (2, {})
    assert document.cleared("z", 3.0).version == 3


@pytest.mark.parametrize(("raw", "fault"), [
    ("{", "not JSON"),
    ("[]", "expected a JSON object"),
    (json.dumps({"version": 1, "overides": {}}), "unknown field"),
    (json.dumps({"version": -1}), "version must be"),
    (json.dumps({"version": "3"}), "version must be"),
    (json.dumps({"version": True}), "version must be"),
    (json.dumps({"version": 1, "overrides": []}), "must be an object"),
    (_document({"api": {"split": {"api": 0, "b": 5}}}), "whole number from 1"),
    (_document({"api": {"split": {"api": 1.5}}}), "whole number from 1"),
    (_document({"api": {"split": {"api": "95"}}}), "whole number from 1"),
    (_document({"api": {"split": {"api": True}}}), "whole number from 1"),
    (_document({"api": {"split": {}}}), "at least one"),
    (_document({"api": {"split": "api=95"}}), "expected an object"),
    (_document({"api": {"split": {"bad key": 1}}}), "not a valid route key"),
    (_document({"bad key": {"switch": "b"}}), "not a valid route key"),
    (_document({"api": {"switch": "b", "drain": None}}), "exactly one of"),
    (_document({"api": {"weights": {"b": 1}}}), "exactly one of"),
    (_document({"api": {}}), "exactly one of"),
    (_document({"api": "b"}), "must be an object"),
    (_document({"api": {"switch": None}}), "switch to is missing"),
    (_document({"api": {"switch": "api"}}), "into itself"),
    (_document({"api": {"drain": "api"}}), "into itself"),
    (_document({"api": {"drain": 3}}), "expected a route key"),
    (_document({"api": {"switch": "{x}"}}), "not a valid route key"),
    (_document({"api": {"switch": "b", "by": 3}}), "by must be a string"),
    (_document({"api": {"switch": "b", "at": "now"}}), "at must be a number"),
    (_document({"a": {"switch": "b"}, "b": {"drain": "a"}}), "a cycle"),
    (_document({"a": {"split": {"a": 1, "b": 1}}, "b": {"switch": "a"}}), "a cycle"),
    (_document({f"k{i}": {"switch": f"k{i + 1}"} for i in range(MAX_HOPS + 1)}),
     f"more than {MAX_HOPS}"),
    (_document({f"k{i}": {"switch": "z"} for i in range(MAX_OVERRIDES + 1)}),
     f"over {MAX_OVERRIDES}"),
])
def test_a_document_the_edges_must_not_apply_is_refused_saying_why(raw: str, fault: str
                                                                     ) -> None:
    with pytest.raises(OverrideError, match=fault):
        parse_document(raw)


@pytest.mark.parametrize(("key", "kind", "argument", "fault"), [
    ("api", "split", "api=95,api-v2=x", "whole number"),
    ("api", "split", "api=95;api-v2=5", "whole number"),
    ("api", "split", "", "expected key=weight"),
    ("api", "weigh", "b", "unknown override"),
    ("api", "switch", None, "missing"),
    ("api", "switch", "api", "into itself"),
    ("api", "drain", "not/valid", "not a valid route key"),
    ("not valid", "drain", None, "not a valid route key"),
])
def test_the_command_refuses_a_bad_override_saying_why(key: str, kind: str,
                                                        argument: str | None, fault: str) -> None:
    with pytest.raises(OverrideError, match=fault):
        new_override(key, kind, argument)


def test_a_change_that_makes_a_cycle_is_refused() -> None:
    document = RouteOverrides().changed("a", new_override("a", "switch", "b"), "x", 1.0)
    with pytest.raises(OverrideError, match="a cycle"):
        document.changed("b", new_override("b", "drain", "a"), "x", 2.0)


def test_where_new_requests_go() -> None:
    document = parse_document(_document({
        "api": {"split": {"api": 3, "api-v2": 1}}, "old": {"switch": "new"},
        "legacy": {"drain": None}, "batch": {"drain": "old"}}))
    picker = Picker(document.overrides)
    assert Counter(picker.pick("api") for _ in range(400)) == {"api": 300, "api-v2": 100}
    assert picker.pick("old") == "new"
    assert picker.pick("legacy") == "legacy"  # drained with nowhere to go: the edge refuses it
    assert picker.pick("batch") == "new"  # drained into old, which is switched to new
    assert picker.pick("other") == "other"


def test_a_split_share_sent_to_a_switched_key_follows_the_switch() -> None:
    picker = Picker({"api": Override("split", weights={"api": 1, "api-v2": 1}),
                     "api-v2": Override("switch", into="api-v3")})
    assert Counter(picker.pick("api") for _ in range(10)) == {"api": 5, "api-v3": 5}
