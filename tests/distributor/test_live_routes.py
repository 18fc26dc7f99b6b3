"""The overrides one edge applies (``distributor/overrides.py``), in memory: what it logs, what it
refuses, what it keeps when Redis does not answer, and how often it looks."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from channels_distributed.distributor import overrides as live
from channels_distributed.distributor.overrides import POLL_INTERVAL, LiveRoutes
from channels_distributed.exceptions import RedisUnavailable
from channels_distributed.figures import EdgeFigures
from channels_distributed.protocol.keys import DistKeys
from channels_distributed.protocol.overrides import RouteOverrides, new_override
from channels_distributed.protocol.routing import RouteTable
from tests.helpers import wait_for_async

LOGGER = "channels_distributed.distributor.overrides"


def _routes(loop: Any = None) -> tuple[LiveRoutes, EdgeFigures]:
    hub = SimpleNamespace(keys=DistKeys("p"), loop=loop,
                          shard_for=lambda key: SimpleNamespace(spec=None))
    figures = EdgeFigures("d-1", "edge")
    table = RouteTable({"^/api/": "api", "^/": "site"})
    return LiveRoutes(hub, figures, 1.0, table=table), figures  # type: ignore[arg-type]


def _document(*changes: tuple[str, str, str | None]) -> bytes:
    document = RouteOverrides()
    for key, kind, argument in changes:
        document = document.changed(key, new_override(key, kind, argument), "ops@h", 1.0)
    return document.dumps().encode()


def test_the_edge_looks_at_least_twice_a_second() -> None:
    assert POLL_INTERVAL <= 0.5


def test_a_change_is_applied_logged_per_key_and_shown_on_the_card(
        caplog: pytest.LogCaptureFixture) -> None:
    routes, figures = _routes()
    assert not routes.active and routes.pick("api") == "api"
    assert figures.card()["settings_routes"] == [["^/api/", "api"], ["^/", "site"]]
    caplog.set_level(logging.INFO, LOGGER)
    assert routes.apply(_document(("api", "split", "api=95,api-v2=5"), ("old", "drain", None)))
    assert routes.active and routes.closed == {"old"} and routes.drained == ("old",)
    assert [r.getMessage() for r in caplog.records] == [
        "route key api: settings -> split api=95,api-v2=5 (routes version 0 -> 2, by ops@h)",
        "route key old: settings -> drain (503) (routes version 0 -> 2, by ops@h)"]
    card = figures.card()
    assert card["routes_version"] == 2
    assert card["overrides"] == {"api": "split api=95,api-v2=5", "old": "drain (503)"}
    caplog.clear()
    assert not routes.apply(_document(("api", "split", "api=95,api-v2=5"), ("old", "drain", None)))
    assert caplog.records == []  # the same document: nothing to do, nothing logged
    assert routes.apply(None)  # the key deleted: back to the settings
    assert [r.getMessage() for r in caplog.records] == [
        "route key api: split api=95,api-v2=5 -> settings (routes version 2 -> 0, by unknown)",
        "route key old: drain (503) -> settings (routes version 2 -> 0, by unknown)"]
    assert not routes.active and routes.closed == frozenset() and figures.card()["overrides"] == {}


def test_a_bad_document_is_refused_with_one_error_and_the_last_good_stays(
        caplog: pytest.LogCaptureFixture) -> None:
    routes, figures = _routes()
    routes.apply(_document(("old", "switch", "new")))
    bad = json.dumps({"version": 9, "overrides": {"api": {"split": {"api": 0}}}}).encode()
    for _ in range(3):
        assert not routes.apply(bad)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "refused, the overrides of version 1 stay in force" in errors[0].getMessage()
    assert "whole number from 1" in errors[0].getMessage()
    assert routes.pick("old") == "new" and figures.routes_version == 1
    assert not routes.apply(b"{not json")  # another bad one: its own line
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    assert routes.apply(_document(("old", "switch", "newer")))  # a good one again
    assert routes.pick("old") == "newer"


async def test_the_poll_applies_a_write_and_keeps_the_last_good_while_redis_is_away(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    stored: list[Any] = [_document(("old", "switch", "new"))]
    reads: list[None] = []

    async def read(shard: Any, key: str) -> bytes | None:
        reads.append(None)
        if isinstance(stored[0], Exception):
            raise stored[0]
        return stored[0]  # type: ignore[no-any-return]

    monkeypatch.setattr(live, "read_overrides", read)
    monkeypatch.setattr(live, "POLL_INTERVAL", 0.01)
    swept: list[None] = []
    routes, _ = _routes(asyncio.get_running_loop())
    routes.after_poll = lambda: swept.append(None)
    routes.start()
    try:
        await wait_for_async(lambda: routes.pick("old") == "new", what="the first read applied")
        stored[0] = RedisUnavailable("gone")
        count = len(reads)
        await wait_for_async(lambda: len(reads) > count + 3, what="reads while Redis is away")
        assert routes.pick("old") == "new"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "stay in force" in warnings[0].getMessage()
        assert swept == []  # nothing drained: no sweep of queued requests
        stored[0] = _document(("old", "drain", "new"))
        await wait_for_async(lambda: swept, what="a sweep after a poll, once a key is drained")
        assert routes.drained == ("old",)
    finally:
        await routes.stop()
