"""Fixtures of the distributed tests: real processes on a private redis-server.

A test marked ``core`` that takes ``shared`` or ``private`` runs on each server kind of
``tests/servers.py`` (the suite's default server is one of them) instead of the default server,
and on the session's Redis Cluster; in a run that does not select ``-m core`` only (nox's
``full`` session, a plain ``pytest``), also sharded over three servers and behind a sentinel
(the topologies of ``tests/conftest.py``; Redis 6.2 runs alone only). The ``-m core`` sessions
(floors, core-3.11, core-3.13) leave those two out: they add ~15 s per session, and the layer
tests of those sessions run the topology-specific transport code on them already.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Deployment, Servers
from servers import KINDS, ServerPool

from channels_distributed.embedded import RedisCluster, RedisServer

_KIND_FIXTURES = {"shared": "module", "private": "function"}
_FULL_ONLY = ["sharded", "sentinel"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("core") is None:
        return
    core_session = metafunc.config.getoption("markexpr", "").strip() == "core"
    topologies = [*KINDS, "cluster", *([] if core_session else _FULL_ONLY)]
    for name, scope in _KIND_FIXTURES.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, topologies, indirect=True, scope=scope)


def _server(request: pytest.FixtureRequest) -> RedisServer | RedisCluster | Servers:
    """The default server, or the one of the kind the test is parametrized with, or the
    session's Redis Cluster (its edge and workers are given one node's URL), or its sharded
    servers (every URL) or Sentinel master (a redis+sentinel:// URL)."""
    kind = getattr(request, "param", "default")
    if kind == "default":
        return request.getfixturevalue("redis_single").servers[0]  # type: ignore[no-any-return]
    if kind == "cluster":
        return request.getfixturevalue("redis_cluster").cluster  # type: ignore[no-any-return]
    if kind == "sharded":
        servers = request.getfixturevalue("redis_sharded").servers
        return Servers(servers, " ".join(server.url for server in servers))
    if kind == "sentinel":
        topology = request.getfixturevalue("redis_sentinel")
        (host, port), = topology.seeds[0]["sentinels"]
        return Servers(topology.servers, f"redis+sentinel://{host}:{port}/mymaster")
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
