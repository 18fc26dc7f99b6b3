"""The route table: ordered re.search, template expansion, and keys a client cannot choose."""

from __future__ import annotations

import re

import pytest

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.protocol.routing import RouteTable, valid_route_key

SEED_ROUTES = {
    "/api/([a-z-]+)": r"ASGI-\1",
    "/worker/([0-9]+)": r"worker-queue-\1",
    "/": "ALL-WEBSITE-TRAFFIC",
}


@pytest.mark.parametrize(("path", "key"), [
    # The seed's table, with its template r"API-\1".
    ("/api/test", "API-test"),
    ("/api/test/38", "API-test"),
    ("/api/banana", "API-banana"),
    ("/test/api/test2", "API-test"),  # re.search matches anywhere; [a-z-]+ stops at the 2
])
def test_seed_key_table(path: str, key: str) -> None:
    assert RouteTable({"/api/([a-z-]+)": r"API-\1"}).resolve(path) == key


def test_first_matching_route_wins() -> None:
    table = RouteTable(SEED_ROUTES)
    assert table.resolve("/api/testing") == "ASGI-testing"
    assert table.resolve("/worker/12") == "worker-queue-12"
    assert table.resolve("/anything/else") == "ALL-WEBSITE-TRAFFIC"
    assert len(table) == 3


def test_order_of_a_list_of_pairs_is_kept() -> None:
    table = RouteTable([("/", "catch-all"), ("/api/(x)", r"never-\1")])
    assert table.resolve("/api/x") == "catch-all"


def test_named_groups_and_compiled_patterns() -> None:
    table = RouteTable({re.compile(r"^/t/(?P<team>[a-z]+)"): r"team-\g<team>"})
    assert table.resolve("/t/blue/x") == "team-blue"
    assert table.resolve("/x/t/blue") is None  # anchored


def test_no_match_is_none() -> None:
    assert RouteTable({"^/api/": "api"}).resolve("/other") is None


@pytest.mark.parametrize("path", ["/x/a b", "/x/a{b}", "/x/a:b", "/x/" + "a" * 100, "/x/",
                                  "/x/é", "/x/a\tb"])
def test_invalid_expansion_is_none_not_the_next_route(path: str) -> None:
    table = RouteTable([("^/x/(.*)$", r"\1"), ("/", "fallback")])
    assert table.resolve(path) is None


def test_a_group_that_did_not_take_part_expands_empty() -> None:
    table = RouteTable({"^/(a)?b": r"k-\1"})
    assert table.resolve("/b") == "k-"
    assert table.resolve("/ab") == "k-a"


@pytest.mark.parametrize("key", ["a", "A-b_c.d", "9" * 99])
def test_valid_keys(key: str) -> None:
    assert valid_route_key(key)


@pytest.mark.parametrize("key", ["", "a!b", "a b", "{x}", "x" * 100, None, 5, "ü"])
def test_invalid_keys(key: object) -> None:
    assert not valid_route_key(key)


@pytest.mark.parametrize(("routes", "message"), [
    ({}, "no routes"),
    ("/api", "expected a dict"),
    (5, "expected a dict"),
    ([("/a",)], "cannot read route"),
    ({"(": "k"}, "not a valid regex"),
    ({"/a": 5}, "must be a string"),
    ({5: "k"}, "not a string"),
    ({"/(a)": r"k-\2"}, "does not have"),
    ({"/(a)": r"k-\g<name>"}, "does not have"),
    ({"/a": "not valid!"}, "not a valid route key"),
])
def test_bad_tables_raise_configuration_errors(routes: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RouteTable(routes)  # type: ignore[arg-type]


def test_templates_expand_named_numbered_and_unmatched_groups() -> None:
    table = RouteTable([
        (r"^/n/(?P<x>[a-z]+)/(\d+)", r"N-\g<x>-\g<2>-\2"),
        (r"^/o/(x)?y", r"O-\1"),
        (r"^/e/(a)", "x\\.\\1"),  # other escapes go through re's own expansion
    ])
    assert table.resolve("/n/abc/42") == "N-abc-42-42"
    assert table.resolve("/o/y") == "O-"  # an unmatched group expands to nothing
    assert table.resolve("/o/xy") == "O-x"
    assert table.resolve("/e/a") is None  # "x\.a": a backslash is not valid in a key
