"""The serving process's event loop and garbage collector set-up (``loop.py``), in memory."""

from __future__ import annotations

import asyncio
import gc

import pytest

from channels_distributed.loop import GC_THRESHOLD, close_loop, new_loop, serving_gc


def test_new_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for() -> None:
    uvloop = pytest.importorskip("uvloop")
    for kind, expected in (("auto", uvloop.Loop), ("uvloop", uvloop.Loop),
                           ("asyncio", asyncio.BaseEventLoop)):
        loop = new_loop(kind)
        try:
            assert isinstance(loop, expected), kind
            assert kind != "asyncio" or not isinstance(loop, uvloop.Loop)
        finally:
            loop.close()


def test_serving_gc_tunes_the_collector_and_undoes_it() -> None:
    before = gc.get_threshold()
    with serving_gc():
        assert gc.get_threshold() == (GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what exists now is left out of full collections
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with serving_gc(0):  # 0 keeps the threshold
        assert gc.get_threshold() == before
    assert gc.get_threshold() == before


def test_close_loop_cancels_what_is_pending_and_closes() -> None:
    loop = new_loop("asyncio")
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    task = loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))
    close_loop(loop)
    assert task.cancelled() and cancelled == [True] and loop.is_closed()
    close_loop(loop)  # a closed loop is left be
