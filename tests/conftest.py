"""Shared fixtures: real redis-server processes on free loopback ports (never port 6379), and
gunicorn masters with the ASGIWorker (``gunicorn``)."""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gunicorn_helpers import Gunicorn
from helpers import unique_prefix
from sentinels import Sentinel
from servers import KINDS, ServerPool, require_kind

from channels_distributed.embedded import RedisCluster, RedisServer
from channels_distributed.layer import RedisChannelLayer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
pytest_plugins = ["tiers"]

# Every temporary file of the run (pytest's tmp_path folders, the Redis servers' folders, what
# child processes write) goes into one folder of the run's own: at the end it must hold nothing
# else than pytest's folders, and it is removed when the run passed (kept to debug a failure).
RUN_TMP = Path(tempfile.mkdtemp(prefix="cd-tests-"))
os.environ["TMPDIR"] = tempfile.tempdir = str(RUN_TMP)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    pytest_folder = f"pytest-of-{getpass.getuser()}"
    left = sorted(p.name for p in RUN_TMP.iterdir() if p.name != pytest_folder)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nthe test run left temporary files behind in {RUN_TMP}: {left}")
    elif exitstatus == pytest.ExitCode.OK:
        shutil.rmtree(RUN_TMP, ignore_errors=True)
    else:
        print(f"\ntemporary files of this run (kept to debug it): {RUN_TMP}")



@dataclass
class Topology:
    """A set of Redis servers and the ``hosts`` value that points a layer at them."""

    name: str
    servers: list[RedisServer] = field(default_factory=list)
    #: What ``hosts`` names instead of every server (a cluster: one node's URL is enough;
    #: Sentinel: the sentinels and the master's name).
    seeds: list[Any] | None = None
    cluster: RedisCluster | None = None

    @property
    def hosts(self) -> list[Any]:
        return self.seeds or [server.url for server in self.servers]

    def keys(self, pattern: str = "*") -> list[bytes]:
        found: list[bytes] = []
        for server in self.servers:
            found.extend(server.keys(pattern))
        return found


def _standalone(count: int, name: str) -> Iterator[Topology]:
    topology = Topology(name)
    for _ in range(count):
        topology.servers.append(RedisServer().start())
    yield topology
    for server in topology.servers:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_single() -> Iterator[Topology]:
    yield from _standalone(1, "single")


@pytest.fixture(scope="session")
def redis_sharded() -> Iterator[Topology]:
    yield from _standalone(3, "sharded")


def _cluster(name: str, binary: str | None) -> Iterator[Topology]:
    # One cluster per session and kind: it takes ~2 s to form. Layers name one node only,
    # the second: the others are found from it.
    cluster = RedisCluster(3, binary=binary).start()
    yield Topology(name, cluster.primaries, seeds=[cluster.nodes[1].url], cluster=cluster)
    cluster.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Topology]:
    """Redis Cluster of 3 primaries from the suite's default server (Redis 7 where found), or
    from Valkey 8 where that is Redis 6.2 (``embedded.find_cluster_server``)."""
    yield from _cluster("cluster", None)


@pytest.fixture(scope="session")
def redis_cluster_valkey() -> Iterator[Topology]:
    """The same cluster on Valkey 8."""
    yield from _cluster("cluster-valkey-8", require_kind("valkey-8").binary)


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[Topology]:
    """One server and a sentinel watching it; layers find the master through the sentinel."""
    server = RedisServer().start()
    watcher = Sentinel(server)
    yield Topology("sentinel", [server], seeds=[
        {"sentinels": [("127.0.0.1", watcher.port)], "master_name": "mymaster"}])
    watcher.stop()
    server.cleanup()


@pytest.fixture
def failover_cluster() -> Iterator[RedisCluster]:
    """A cluster of the test's own, for a test that kills a primary: three primaries with a
    replica each, which takes over 1 s (``cluster-node-timeout``) after its primary died."""
    with RedisCluster(3, replicas=1, node_timeout_ms=1000) as made:
        yield made


@pytest.fixture(scope="session")
def redis_pool() -> Iterator[ServerPool]:
    """Servers of each kind (tests/servers.py), started when a test first asks for one."""
    pool = ServerPool()
    yield pool
    pool.cleanup()


# The deployments a test that takes ``topology`` runs on: the suite's default server, alone,
# sharded over three, behind a sentinel, and a Redis Cluster of three primaries; a test marked
# ``core`` runs on each server kind alone (the default server is one of them), sharded, behind
# a sentinel, and on a cluster of the default server and of Valkey 8 (Redis 6.2 has no CLUSTER
# SHARDS: it runs alone only).
TOPOLOGIES = ["single", "sharded", "sentinel", "cluster"]
CORE_TOPOLOGIES = [*(f"single-{kind}" for kind in KINDS), "sharded", "sentinel", "cluster",
                   "cluster-valkey-8"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = any("topology" in str(mark.args[0]) for mark in
                 metafunc.definition.iter_markers("parametrize"))
    if "topology" in metafunc.fixturenames and not chosen:  # else the test chose its own
        core = metafunc.definition.get_closest_marker("core") is not None
        metafunc.parametrize("topology", CORE_TOPOLOGIES if core else TOPOLOGIES,
                             indirect=True)


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Topology:
    name: str = request.param
    if name.startswith("single-"):
        pool: ServerPool = request.getfixturevalue("redis_pool")
        return Topology(name, pool.get(name.removeprefix("single-")))
    if name == "cluster-valkey-8":
        return request.getfixturevalue("redis_cluster_valkey")  # type: ignore[no-any-return]
    return request.getfixturevalue(f"redis_{name}")  # type: ignore[no-any-return]


@pytest.fixture
def redis_fresh() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that stop or restart Redis."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def make_layer(topology: Topology) -> Iterator[object]:
    """Factory of layers on the current topology with a prefix unique to the test."""
    prefix = unique_prefix()
    made: list[RedisChannelLayer] = []

    def factory(**config: object) -> RedisChannelLayer:
        config.setdefault("hosts", topology.hosts)
        config.setdefault("prefix", prefix)
        layer = RedisChannelLayer(**config)
        made.append(layer)
        return layer

    yield factory


@pytest.fixture
async def layer(make_layer: object) -> AsyncIterator[RedisChannelLayer]:
    channel_layer: RedisChannelLayer = make_layer()  # type: ignore[operator]
    yield channel_layer
    await channel_layer.flush()
    await channel_layer.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """Factory: ``gunicorn("module:app", "--flag", env={...})`` starts a master and one worker."""
    started: list[Gunicorn] = []

    def start(
        app: str, *args: str, env: dict[str, str] | None = None, ready: bool = True
    ) -> Gunicorn:
        server = Gunicorn(app, list(args), dict(env or {}), tmp_path)
        started.append(server)
        return server.start(ready=ready)

    yield start
    for server in started:
        server.stop()
