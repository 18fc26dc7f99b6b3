"""Fixtures of the distributed tests: real processes on a private redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dist_helpers import Cluster

from channels_distributed.embedded import RedisServer


@pytest.fixture(scope="module")
def shared(redis_single: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An edge and two workers on key ``t``, shared by a module's tests."""
    server = redis_single.servers[0]  # type: ignore[attr-defined]
    cluster = Cluster(server, tmp_path_factory.mktemp("shared"))
    cluster.url = cluster.edge()  # type: ignore[attr-defined]
    first = cluster.worker("t")
    cluster.worker("t", wait=False)
    cluster.wait_registered("t", first, count=2)
    yield cluster
    cluster.close()


@pytest.fixture
def cluster(redis_fresh: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    """A Redis of the test's own (it may stop it), with processes started by the test."""
    made = Cluster(redis_fresh, tmp_path)
    yield made
    made.close()


@pytest.fixture
def private(redis_single: object, tmp_path: Path) -> Iterator[Cluster]:
    """Processes of the test's own on the shared Redis (a prefix of its own)."""
    made = Cluster(redis_single.servers[0], tmp_path)  # type: ignore[attr-defined]
    yield made
    made.close()
