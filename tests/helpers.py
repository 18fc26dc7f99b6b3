"""The suite's shared helpers: polling with a deadline, key prefixes unique to a test, whether a
process still runs, and what an application under test recorded in a file.

Every wait in the suite ends: ``wait_for`` / ``wait_for_async`` poll a condition and fail the
test, naming what was awaited, when it does not come true in time. Tests never sleep where they
can poll.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Long enough for a process to start on a loaded 2-core CI machine; a test that passes never
# waits this long.
WAIT = 20.0
_POLL_INTERVAL = 0.02
_prefixes = itertools.count()


def wait_for(predicate: Callable[[], object], timeout: float = WAIT, what: str = "") -> object:
    """Poll ``predicate`` until it returns something true, return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(_POLL_INTERVAL)


async def wait_for_async(probe: Callable[[], object], timeout: float = WAIT, what: str = "",
                         interval: float = _POLL_INTERVAL) -> object:
    """``wait_for`` in an event loop, which runs on between polls; ``probe`` may be async.

    ``interval=0`` polls after every pass of the loop: for a state that the next pass may
    already leave behind (a message delivered to a task that has not run yet)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        await asyncio.sleep(interval)


def unique_prefix() -> str:
    """A key prefix no other test of this run (in any process of it) uses."""
    return f"t{os.getpid()}x{next(_prefixes)}"


def pid_alive(pid: int) -> bool:
    """Whether the process ``pid`` still runs. A zombie counts as gone: a process that exited
    stays one while its parent does not reap it (an orphan whose new parent, a container's
    init, never does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False  # gone since the signal above
    return stat.rpartition(")")[2].split()[0] != "Z"  # the state follows the command's name


def recorded(path: Path) -> list[str]:
    """The values an application under test appended to the file ``path``, one a line (an empty
    list before the first)."""
    return path.read_text().split() if path.exists() else []


async def run_asgi(app: Any, scope: dict[str, Any],
                   incoming: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run an ASGI application on ``scope`` in memory: ``incoming`` events (by default one
    empty ``http.request``), then a ``receive()`` that waits; the events it sent."""
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("receive() waited an hour")

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent
