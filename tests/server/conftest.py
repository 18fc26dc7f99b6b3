"""Fixtures: shared gunicorn masters with the ASGIWorker on free loopback ports, each serving a
module's tests (the ``gunicorn`` fixture, a master per test, is in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn_helpers import Gunicorn


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """One shared server running ``testproject.apps_server:echo`` with short timeouts."""
    workdir = tmp_path_factory.mktemp("echo")
    server = Gunicorn(
        "testproject.apps_server:echo",
        [
            "--keep-alive",
            "1",
            "--limit-request-line",
            "300",
            "--limit-request-fields",
            "20",
            "--limit-request-field_size",
            "200",
        ],
        {"CD_HEADER_TIMEOUT": "1", "CD_MAX_DRAIN": "100000"},
        workdir,
    )
    server.start()
    yield server
    server.stop()


# The edge server's body timeout (s). The server checks deadlines every TICK (0.25 s), so one
# can pass up to a tick late: a body trickled with gaps well under 0.35 s is never late, and
# waits longer than 0.85 s outlast the timeout for sure.
BODY_TIMEOUT = 0.6


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """One shared server running ``tests/server/edge_apps.py`` with a short body timeout
    (``BODY_TIMEOUT``), so that the tests that outlast it wait little."""
    workdir = tmp_path_factory.mktemp("edge")
    server = Gunicorn(
        "edge_apps:app",
        ["--pythonpath", str(Path(__file__).parent)],
        {"CD_BODY_TIMEOUT": str(BODY_TIMEOUT)},
        workdir,
    )
    server.start()
    yield server
    server.stop()
