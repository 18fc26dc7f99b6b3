"""Fixtures of the distributed tests: real processes on a private redis-server.

A test marked ``core`` that takes ``shared`` or ``private`` runs on each server kind of
``tests/servers.py`` (the suite's default server is one of them) instead of the default server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Deployment
from servers import KINDS, ServerPool

from channels_distributed.embedded import RedisCluster, RedisServer

_KIND_FIXTURES = {"shared": "module", "private": "function"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("core") is None:
        return
    for name, scope in _KIND_FIXTURES.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [*KINDS, "cluster"], indirect=True, scope=scope)


def _server(request: pytest.FixtureRequest) -> RedisServer | RedisCluster:
    """The default server, or the one of the kind the test is parametrized with, or the
    session's Redis Cluster (its edge and workers are given one node's URL)."""
    kind = getattr(request, "param", "default")
    if kind == "default":
        return request.getfixturevalue("redis_single").servers[0]  # type: ignore[no-any-return]
    if kind == "cluster":
        return request.getfixturevalue("redis_cluster").cluster  # type: ignore[no-any-return]
    pool: ServerPool = request.getfixturevalue("redis_pool")
    return pool.get(kind)[0]


@pytest.fixture(scope="module")
def shared(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """An edge and two workers on key ``t``, shared by a module's tests."""
    deployment = Deployment(_server(request), tmp_path_factory.mktemp("shared"))
    deployment.url = deployment.edge()  # type: ignore[attr-defined]
    first = deployment.worker("t")
    deployment.worker("t", wait=False)
    deployment.wait_registered("t", first, count=2)
    yield deployment
    deployment.close()


@pytest.fixture
def deployment(redis_fresh: RedisServer, tmp_path: Path) -> Iterator[Deployment]:
    """A Redis of the test's own (it may stop it), with processes started by the test."""
    made = Deployment(redis_fresh, tmp_path)
    yield made
    made.close()


@pytest.fixture
def private(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Processes of the test's own on a shared Redis (a prefix of its own)."""
    made = Deployment(_server(request), tmp_path)
    yield made
    made.close()
