"""Django's per-request threads from the worker's pool (``channels_distributed.django.threads``).
In memory: the applications are called directly, with Django's real ``ASGIHandler``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.asgi import get_asgi_application

from channels_distributed.django.threads import (
    ThreadPool,
    django_http_handler,
    pooled,
    supports_executor,
)
from channels_distributed.django.worker import WorkerOptions, make_node, request_threads

pytestmark = pytest.mark.skipif(not supports_executor(),
                                reason="this asgiref's ThreadSensitiveContext takes no executor")

HTTP: dict[str, Any] = {"type": "http", "method": "GET", "path": "/hello/", "raw_path": b"/hello/",
                        "query_string": b"", "root_path": "", "scheme": "http",
                        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1),
                        "server": ("127.0.0.1", 80), "asgi": {"version": "3.0"},
                        "http_version": "1.1"}


async def _nothing(event: Any) -> None:
    pass


async def _no_receive() -> Any:
    raise AssertionError("not called")


class ThreadsSeen:
    """An application in Django's manner: a ThreadSensitiveContext of its own, two
    thread-sensitive sync calls; records the threads they ran on, per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()  # a request's first sync call has run

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext():
            first = await sync_to_async(threading.get_ident)()
            self.entered.set()
            await self.release.wait()
            second = await sync_to_async(threading.get_ident)()
        self.requests.append((first, second))


async def test_a_request_keeps_one_thread_and_the_next_one_reuses_it() -> None:
    app, pool = ThreadsSeen(), ThreadPool(keep=4)
    served = pooled(app, pool)
    await served(HTTP, _no_receive, _nothing)
    await served(HTTP, _no_receive, _nothing)
    (a, b), (c, d) = app.requests
    assert a == b == c == d != threading.get_ident()
    pool.close()


async def test_concurrent_requests_run_on_threads_of_their_own() -> None:
    app, pool = ThreadsSeen(), ThreadPool(keep=4)
    served = pooled(app, pool)
    app.release.clear()
    both = asyncio.gather(served(HTTP, _no_receive, _nothing),
                          served(HTTP, _no_receive, _nothing))
    await asyncio.sleep(0)
    app.release.set()
    await asyncio.wait_for(both, 10)
    (a, b), (c, d) = app.requests
    assert a == b and c == d and a != c
    pool.close()


async def test_idle_threads_beyond_keep_are_stopped() -> None:
    pool = ThreadPool(keep=1)
    first, second = pool.lend(), pool.lend()
    pool.give_back(first)
    pool.give_back(second)
    assert pool.lend() is first
    with pytest.raises(RuntimeError):  # shut down
        second.submit(int)


async def test_a_cancelled_request_does_not_give_its_thread_back() -> None:
    app, pool = ThreadsSeen(), ThreadPool(keep=4)
    app.release.clear()
    task = asyncio.ensure_future(pooled(app, pool)(HTTP, _no_receive, _nothing))
    await asyncio.wait_for(app.entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool._idle == []


async def test_other_scopes_keep_asgirefs_own_threads() -> None:
    class NoThreads(ThreadPool):
        def lend(self) -> Any:
            raise AssertionError("a thread was lent to a WebSocket")

    app = ThreadsSeen()
    await pooled(app, NoThreads(keep=4))({"type": "websocket"}, _no_receive, _nothing)
    assert len(app.requests) == 1


async def test_djangos_handler_serves_a_view_on_a_pooled_thread() -> None:
    pool = ThreadPool(keep=4)
    served = pooled(get_asgi_application(), pool)
    for _ in range(2):
        events: list[dict[str, Any]] = []
        given = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive(given: list[dict[str, Any]] = given) -> Any:
            if given:
                return given.pop()
            await asyncio.sleep(3600)

        async def send(event: dict[str, Any], events: list[dict[str, Any]] = events) -> None:
            events.append(event)

        await asyncio.wait_for(served(HTTP, receive, send), 10)
        assert events[0]["status"] == 200
        assert b"".join(e.get("body", b"") for e in events[1:]) == b"Hello, world"
        assert len(pool._idle) == 1  # the same thread served both
    pool.close()


def test_the_handler_is_found_directly_or_under_a_protocol_router() -> None:
    from channels.routing import ProtocolTypeRouter

    from channels_distributed.demo.asgi import application, django_asgi_app

    assert django_http_handler(application) is django_asgi_app
    assert django_http_handler(django_asgi_app) is django_asgi_app
    assert django_http_handler(ProtocolTypeRouter({"websocket": django_asgi_app})) is None
    assert django_http_handler(_nothing) is None


def test_runworker_pools_djangos_threads_unless_told_not_to() -> None:
    node, banner = make_node(settings, WorkerOptions(("site",), concurrency=7))
    assert banner[-1] == "  threads      Django requests on pooled threads (up to 7 kept idle)"
    assert node.app_name == "channels.routing:ProtocolTypeRouter"  # the project's, in logs
    plain, banner = make_node(settings, WorkerOptions(("site",), thread_pool=False))
    assert banner[-1] == ("  threads      a new thread per Django request "
                          "(--per-request-threads)")
    assert plain.app_name == node.app_name
    app, said = request_threads(_nothing, WorkerOptions(("site",)))
    assert app is _nothing and "not Django's" in said


async def test_a_task_left_running_after_its_request_gets_asgirefs_error() -> None:
    """The one difference from a thread per request (docs/distributed.rst)."""
    left: list[asyncio.Task[int]] = []
    go_on = asyncio.Event()

    async def later() -> int:
        await go_on.wait()
        return await sync_to_async(threading.get_ident)()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext():
            left.append(asyncio.ensure_future(later()))

    pool = ThreadPool(keep=4)
    await pooled(app, pool)(HTTP, _no_receive, _nothing)
    go_on.set()
    with pytest.raises(RuntimeError, match="has exited"):
        await asyncio.wait_for(left[0], 10)
    pool.close()


def test_the_command_line_turns_the_pool_off() -> None:
    from django.core.management import load_command_class

    command = load_command_class("channels_distributed", "runworker")
    parser = command.create_parser("manage.py", "runworker")
    assert parser.parse_args(["site"]).per_request_threads is False
    assert parser.parse_args(["site", "--per-request-threads"]).per_request_threads is True
