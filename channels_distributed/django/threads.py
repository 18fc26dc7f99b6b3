"""Django's per-request thread, from a pool: what ``manage.py runworker`` gives the project's
HTTP requests.

Django's ``ASGIHandler`` runs each request in a ``ThreadSensitiveContext``: its sync middleware
and views (``sync_to_async``, thread-sensitive) all run on one thread of the request's own, so a
request's database connection and thread-locals stay on one thread, and concurrent requests do
not queue behind one another. Left to itself, asgiref starts that thread for the request and, at
its end, starts another to join it: two thread starts and a join per request, a good part of
what a small view costs. asgiref (3.13) lets the server supply the context's executor and use it
again for a later request, "for example in a pool", as its documentation says: the worker enters
that context
around the application, Django's own ``ThreadSensitiveContext`` then finds it and adds nothing,
and the thread comes from this pool. One request at a time per thread, as before; a thread that
served a request serves the next one (Django's ``request_started``/``request_finished`` close its
database connection as under any thread-pooled server, ``CONN_MAX_AGE`` permitting reuse).

Only where the HTTP application is Django's ``ASGIHandler`` (directly, or as the ``"http"`` of a
Channels ``ProtocolTypeRouter``): another application's thread-sensitive calls keep asgiref's
process-wide thread, as under any server.

One difference from a thread per request, asgiref's own rule for a context given an executor: a
task the request started and left running after its response, which then calls thread-sensitive
sync code, gets ``RuntimeError`` rather than a thread of its own that nobody ever stops.
``runworker --per-request-threads`` keeps Django's thread per request for a project that does
that.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..typing import ASGIApp, Receive, Scope, Send

__all__ = ["ThreadPool", "django_http_handler", "pooled"]

class ThreadPool:
    """Single-thread executors, each lent to one request at a time.

    Idle executors beyond ``keep`` are shut down on return: a burst of concurrency leaves no more
    idle threads behind than a steady load uses."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[ThreadPoolExecutor] = []

    def lend(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for executor in idle:
            executor.shutdown(wait=False)


def supports_executor() -> bool:
    """Whether this asgiref's ``ThreadSensitiveContext`` takes an executor (3.13 does)."""
    from asgiref.sync import ThreadSensitiveContext

    return "executor" in inspect.signature(ThreadSensitiveContext).parameters


def django_http_handler(app: Any) -> Any | None:
    """Django's ``ASGIHandler`` if it is what ``app`` runs for HTTP, else None."""
    from channels.routing import ProtocolTypeRouter
    from django.core.handlers.asgi import ASGIHandler

    if isinstance(app, ProtocolTypeRouter):
        app = app.application_mapping.get("http")
    return app if isinstance(app, ASGIHandler) else None


def pooled(app: Any, pool: ThreadPool) -> ASGIApp:
    """``app`` with each HTTP request in a thread-sensitive context on a thread of ``pool``."""
    from asgiref.sync import ThreadSensitiveContext

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        # Django enters its own ThreadSensitiveContext inside this one, which then does nothing:
        # only the outermost context picks the thread.
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        executor = pool.lend()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await app(scope, receive, send)
        except BaseException:
            # Cancelled (the worker is stopping) or failed: a sync call of this request may
            # still be running on the thread, which must not serve another request meanwhile.
            executor.shutdown(wait=False)
            raise
        pool.give_back(executor)

    # Named as the application it runs in the worker's log lines (``module:qualname``).
    named = app if hasattr(app, "__qualname__") else type(app)
    application.__module__ = named.__module__
    application.__qualname__ = named.__qualname__
    return application
