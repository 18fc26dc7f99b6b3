"""The suite's two shared helpers: polling with a deadline, and key prefixes unique to a test.

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


async def wait_for_async(probe: Callable[[], object], timeout: float = WAIT,
                         what: str = "") -> object:
    """``wait_for`` in an event loop, which runs on between polls; ``probe`` may be async."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        await asyncio.sleep(_POLL_INTERVAL)


def unique_prefix() -> str:
    """A key prefix no other test of this run (in any process of it) uses."""
    return f"t{os.getpid()}x{next(_prefixes)}"
