"""The one lifespan runner (channels_distributed/lifespan.py), as the gunicorn worker and the
distributed worker's Node use it: in memory, no server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from channels_distributed.exceptions import LifespanFailure
from channels_distributed.lifespan import Lifespan
from channels_distributed.worker import Node


def _app(startup: str = "complete", shutdown: str = "complete", log: list | None = None) -> Any:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            raise RuntimeError("only lifespan here")
        scope["state"]["ready"] = True
        while True:
            event = await receive()
            phase = event["type"].rpartition(".")[2]
            if log is not None:
                log.append(phase)
            outcome = startup if phase == "startup" else shutdown
            if outcome == "silent":
                await asyncio.get_running_loop().create_future()  # never answers
            await send({"type": f"lifespan.{phase}.{outcome}", "message": "db unreachable"})
            if phase == "shutdown":
                return

    return app


async def _unsupported(scope: dict, receive: Any, send: Any) -> None:
    raise RuntimeError("lifespan? never heard of it")


async def test_startup_and_shutdown_share_the_state() -> None:
    state: dict[str, Any] = {}
    log: list[str] = []
    lifespan = Lifespan(_app(log=log), "auto", state, timeout=5)
    await lifespan.startup()
    assert state == {"ready": True} and lifespan.started
    await lifespan.shutdown()
    assert log == ["startup", "shutdown"]


async def test_startup_failed_raises_and_names_the_switch() -> None:
    lifespan = Lifespan(_app(startup="failed"), "auto", {}, timeout=5, switch_off="OFF-SWITCH")
    with pytest.raises(LifespanFailure, match="startup failed: db unreachable") as caught:
        await lifespan.startup()
    assert "OFF-SWITCH" in str(caught.value) and caught.value.phase == "startup"


async def test_no_reply_times_out() -> None:
    lifespan = Lifespan(_app(startup="silent"), "on", {}, timeout=0.05)
    with pytest.raises(LifespanFailure, match=r"no reply within 0\.05 s"):
        await lifespan.startup()
    assert lifespan.task is not None
    await asyncio.wait_for(asyncio.gather(lifespan.task, return_exceptions=True), 5)
    # The handler is not left waiting forever: it was cancelled.
    assert isinstance(lifespan.error, asyncio.CancelledError)


async def test_an_app_without_lifespan_is_tolerated_in_auto_only() -> None:
    auto = Lifespan(_unsupported, "auto", {}, timeout=5)
    await auto.startup()
    assert not auto.started
    await auto.shutdown()  # nothing to shut down
    with pytest.raises(LifespanFailure, match="did not complete it"):
        await Lifespan(_unsupported, "on", {}, timeout=5).startup()


async def test_off_never_calls_the_app() -> None:
    lifespan = Lifespan(_unsupported, "off", {}, timeout=5)
    await lifespan.startup()
    assert lifespan.task is None


async def test_failed_shutdown_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    lifespan = Lifespan(_app(shutdown="failed"), "auto", {}, timeout=5)
    await lifespan.startup()
    with caplog.at_level(logging.ERROR, "channels_distributed.lifespan"):
        await lifespan.shutdown()
    assert "ASGI lifespan shutdown failed: db unreachable" in caplog.text


async def test_a_node_whose_startup_fails_does_not_serve() -> None:
    # Raised before Redis is reached; the fix names the Node's own setting. (The worker had a
    # lifespan of its own before: ConfigurationError for this, and no timeout at all.)
    node = Node(_app(startup="failed"), key="k", url="redis://127.0.0.1:1/0")
    with pytest.raises(LifespanFailure, match="startup failed: db unreachable") as caught:
        await asyncio.wait_for(node.serve(), 10)
    assert "lifespan='off'" in str(caught.value)
    silent = Node(_app(startup="silent"), key="k", url="redis://127.0.0.1:1/0",
                  lifespan_timeout=0.05)
    with pytest.raises(LifespanFailure, match=r"no reply within 0\.05 s"):
        await asyncio.wait_for(silent.serve(), 10)
