"""The event loop and garbage collector of a serving process: one set-up for the gunicorn
``ASGIWorker`` and the worker ``Node``.

``new_loop()`` makes the loop (uvloop when it is installed), ``serving_gc()`` tunes the cyclic
garbage collector while the process serves, and ``close_loop()`` ends a loop that served.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GC_THRESHOLD", "LOOPS", "close_loop", "new_loop", "serving_gc"]

#: The event loops ``new_loop`` makes: uvloop when it is installed, asyncio's own, or uvloop.
LOOPS = ("auto", "asyncio", "uvloop")

# Young-generation threshold of the cyclic garbage collector while a process serves (0 keeps
# Python's 700). Each request allocates dozens of containers (scope, events, a task), so at 700
# a collection runs every few requests; 50k still collects often enough to bound memory.
GC_THRESHOLD = 50_000


def new_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (one of ``LOOPS``); ``auto`` is uvloop when it is installed
    (it is not on Windows), asyncio's otherwise."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@contextmanager
def serving_gc(threshold: int = GC_THRESHOLD) -> Iterator[None]:
    """While a process serves: collect young garbage every ``threshold`` allocations (0 keeps
    the threshold as it is), and leave what exists now (modules, settings, URL maps, what the
    application built at start-up) out of every later full collection. Both are undone on
    exit, for a process that goes on after serving (a test, an embedding program)."""
    before = gc.get_threshold()
    if threshold:
        gc.set_threshold(threshold, *before[1:])
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def close_loop(loop: asyncio.AbstractEventLoop, timeout: float = 1.0) -> None:
    """End a loop that served: cancel the tasks still pending (they get ``timeout`` seconds to
    finish), finalize async generators, and close it (a running or closed loop is left be).
    Whoever made it the current loop unsets it."""
    if loop.is_running() or loop.is_closed():
        return
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=timeout))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
