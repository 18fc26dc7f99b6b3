"""conftest.py for channels_redis's test_core.py, run against channels_distributed.

Copied next to the upstream tests as ``conftest.py`` by the runner. It is stored under another name
so that the project's own pytest run never loads it as a conftest.
"""

from __future__ import annotations

import json
import os

import pytest

_BASE = os.environ["CHANNELS_REDIS_COMPAT_HOST"].rstrip("/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The upstream module hard-codes localhost:6379 db 0..9 in module globals that the fixtures
    # and test bodies read at call time. Rebinding the globals once, after import and before any
    # test runs, points them at the private server without editing a single test body.
    redirected = {
        "TEST_HOSTS": [f"{_BASE}/0"],
        # A cluster has database 0 only: there the runner names its nodes instead.
        "MULTIPLE_TEST_HOSTS": json.loads(os.environ.get("CHANNELS_REDIS_COMPAT_MULTIPLE", "[]"))
        or [f"{_BASE}/{db}" for db in range(10)],
    }
    modules = {id(item.module): item.module for item in items
               if isinstance(item, pytest.Function) and item.module is not None}
    for module in modules.values():
        for name, value in redirected.items():
            if hasattr(module, name):
                setattr(module, name, value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Hand the outcome counts to the runner as JSON: pytest's own statistics are the only place
    # that tells xpassed from passed and knows the deselected count (the JUnit report does not).
    target = os.environ.get("CHANNELS_REDIS_COMPAT_RESULTS")
    if not target:
        return
    stats = terminalreporter.stats
    counts = {key: len(stats.get(key, [])) for key in
              ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")}
    failed = [report.nodeid for key in ("failed", "error") for report in stats.get(key, [])]
    with open(target, "w") as handle:
        json.dump({"counts": counts, "failed": failed}, handle)
