"""The fast tier: tests that start no process, run after every edit (``make test-fast``).

A test is in the ``processes`` tier when it uses a fixture that starts one (a Redis server, a
deployment of edge and workers, a gunicorn master), when it lives in tests/e2e, tests/smoke or
tests/compat, or when it says so with ``pytest.mark.processes`` (tests that start processes
themselves). Every other test is fast, and a fast test that starts a process anyway fails,
naming the fix: the tier cannot quietly grow slow.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

# Fixtures that start processes, directly or through the fixtures they use.
PROCESS_FIXTURES = frozenset({
    "redis_single", "redis_sharded", "redis_sentinel", "redis_cluster", "redis_cluster_valkey",
    "redis_pool", "redis_fresh", "failover_cluster", "topology", "make_layer",
    "layer", "shared", "private", "deployment", "gunicorn", "echo_server", "edge_server",
})
# Folders whose tests run whole systems (and the installed package) by design.
PROCESS_FOLDERS = frozenset({"e2e", "smoke", "compat"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "processes: the test starts processes (Redis, edge, workers, gunicorn); "
        "`make test-fast` runs the others")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or PROCESS_FOLDERS.intersection(item.path.parts)):
            item.add_marker(pytest.mark.processes)


class _NoProcesses(subprocess.Popen):  # type: ignore[type-arg]
    def __new__(cls, *args: object, **kwargs: object) -> _NoProcesses:
        raise AssertionError(
            "a test of the fast tier started a process: mark its module with "
            "`pytestmark = pytest.mark.processes` (see tests/tiers.py)")


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest,
                                 monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("processes") is None:
        monkeypatch.setattr(subprocess, "Popen", _NoProcesses)
    yield
