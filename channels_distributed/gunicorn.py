"""``ASGIWorker``: gunicorn's worker contract around ``channels_distributed.server``.

Run any ASGI 3 app, ASGI 2 app or legacy ``consumer(message)``::

    gunicorn app:hello_world --worker-class channels_distributed.gunicorn.ASGIWorker

Signals: TERM drains gracefully within ``graceful_timeout`` (the listening sockets close, requests
in flight finish, WebSockets are closed with 1012; ``Server.shutdown``); QUIT/INT stop quickly
after ``worker_int``; ABRT runs ``worker_abort`` and exits 1; USR1 reopens logs. The worker always
leaves through ``run()`` returning or ``SystemExit``, never by a re-raised signal, so
``worker_exit`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, ClassVar

from gunicorn import glogging
from gunicorn.workers import base

from channels_distributed import metrics
from channels_distributed.compiled import compiled_modules
from channels_distributed.conf.server import ServerConfig, setting
from channels_distributed.exceptions import LifespanFailure
from channels_distributed.interfaces import adapt
from channels_distributed.lifespan import Lifespan
from channels_distributed.logs import setup_logging
from channels_distributed.loop import close_loop, new_loop, serving_gc
from channels_distributed.responses import send_plain
from channels_distributed.server.access import RequestInfo, ResponseInfo
from channels_distributed.server.server import Server

__all__ = ["ASGIWorker", "access_logged", "request_hooks"]

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts


class ASGIWorker(base.Worker):  # type: ignore[misc]
    """A gunicorn worker serving HTTP/1.1 and WebSocket on uvloop + httptools."""

    #: Settings gunicorn lacks (see ``docs/gunicorn.rst``); ``CD_*`` environment variables win.
    server_settings: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: Server | None = None
        self.config: ServerConfig | None = None
        self.asgi: Any = None
        self.quick = False
        self._wakeup: asyncio.Future[None] | None = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if cfg.threads > 1:
            log.warning("ASGIWorker does not use --threads; use --worker-connections instead")

    # -- process set-up (the order gunicorn expects) ----------------------------------------

    def init_process(self) -> None:
        _log_through(getattr(self.log, "error_log", None))
        # The loop must exist before super().init_process(): it installs signal handlers on it.
        self.loop = new_loop(setting(self.cfg, "asgi_loop", "auto"))
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def load_wsgi(self) -> None:
        # Before the application is loaded: an edge with metrics on refuses to start when its
        # processes' figures could not be summed (metrics.serving_processes).
        metrics.serving_processes(self.cfg.workers)
        try:
            application = self.app.wsgi()
        except SyntaxError as exc:
            if not self.cfg.reload:
                raise
            self.log.exception(exc)
            if self.reloader is not None and exc.filename is not None:
                self.reloader.add_extra_file(exc.filename)
            application = _error_app(f"{type(exc).__name__}: {exc}")
        self.wsgi = application
        if metrics.LAYER is not None and metrics.multiprocess_dir() and _user_hook(
                self.cfg, "child_exit") is None:
            self.log.warning(
                "metrics: %s is set but no child_exit hook: the open connections of a worker "
                "process that exits stay counted; set child_exit = channels_distributed.metrics."
                "hooks.child_exit in the gunicorn configuration", metrics.MULTIPROC_ENV)
        self.config = ServerConfig.from_gunicorn(self.cfg, self.server_settings)
        self.asgi = adapt(application, self.config.interface, self.config.legacy_timeout)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            raise RuntimeError("ASGIWorker.init_process() creates the event loop; call it first")
        return self.loop

    def init_signals(self) -> None:
        loop = self._require_loop()
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        loop.add_signal_handler(signal.SIGTERM, self._on_term)
        loop.add_signal_handler(signal.SIGQUIT, self._on_quit)
        loop.add_signal_handler(signal.SIGINT, self._on_quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGWINCH, lambda: None)
        # ABRT is gunicorn's "timed out" signal: a plain handler runs even if the loop is stuck.
        signal.signal(signal.SIGABRT, self.handle_abort)

    def _on_term(self) -> None:
        self.alive = False
        self._wake()

    def _on_quit(self) -> None:
        self.quick = True
        if self.alive:
            self.alive = False
            self.cfg.worker_int(self)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # -- running ----------------------------------------------------------------------------

    def run(self) -> None:
        loop = self._require_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            close_loop(loop)

    async def _serve(self) -> None:
        config = self.config
        if config is None:
            raise RuntimeError("ASGIWorker.load_wsgi() resolves the settings; call it first")
        loop = asyncio.get_running_loop()
        server = Server(
            self.asgi,
            config,
            loop=loop,
            log=self.log,
            on_request=self._counted,
            hooks=request_hooks(self.cfg, self),
            access_log=access_logged(self.log, self.cfg),
        )
        self.server = server
        lifespan = Lifespan(self.asgi, config.lifespan, server.state, config.lifespan_timeout)
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            self.log.error("%s", exc)
            raise SystemExit(WORKER_BOOT_ERROR) from None
        with serving_gc(config.gc_threshold):  # after the start-up, which it leaves alone
            try:
                server.start([listener.sock for listener in self.sockets], self._ssl_context())
                self.log.info(
                    "ASGIWorker serving %s (%s HTTP server)",
                    ", ".join(str(s) for s in self.sockets),
                    "compiled" if "channels_distributed.server.http" in compiled_modules()
                    else "pure-Python",
                )
                await self._heartbeat()
            finally:
                self.log.info("Worker shutting down (%s)", "quick" if self.quick else "graceful")
                await server.shutdown(
                    graceful=not self.quick, timeout=self.cfg.graceful_timeout,
                    notify=self.notify
                )
                await lifespan.shutdown()

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.05, min(1.0, self.timeout / 2 if self.timeout else 1.0))
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                return
            self._wakeup = loop.create_future()
            await asyncio.wait([self._wakeup], timeout=interval)
            self._wakeup = None

    def _counted(self) -> None:
        # Counted as the request starts, as gunicorn's workers count: the response to the last
        # one then closes its connection, and a client's next request goes to another worker.
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            if self.server is not None:
                self.server.stop_keepalive()
            self._wake()

    def _ssl_context(self) -> Any:
        if not self.cfg.is_ssl:
            return None
        from gunicorn import sock

        return sock.ssl_context(self.cfg)

    def handle_abort(self, sig: int, frame: Any) -> None:
        self.alive = False
        self.quick = True
        self.cfg.worker_abort(self)
        sys.exit(1)


def _log_through(error_log: Any) -> None:
    """Unless logging is configured otherwise (a handler on the root logger, as gunicorn's
    ``--log-config*`` settings install, or on the package's logger), the package's records go
    through gunicorn's error log: its handlers (the ``--error-logfile``, reopened on USR1), its
    format (time, pid, level) and its ``--log-level`` (a level set for the package stays)."""
    if isinstance(error_log, logging.Logger):
        package = logging.getLogger("channels_distributed")
        setup_logging(package.level or error_log.level, package.name, error_log.handlers)


def access_logged(log: Any, cfg: Any) -> bool:
    """Whether the worker calls gunicorn's ``log.access()`` for each response, on any gunicorn
    release: when a logger class replaces ``access`` (statsd's sends the request metrics from
    it, with or without an access log), always, as gunicorn's own workers call it; for
    gunicorn's plain logger, when its settings make it write a line (an access log file, a
    logging configuration, or syslog with access lines), which the logger says itself only
    from gunicorn 25.2 on (``access_log_enabled``)."""
    if getattr(type(log), "access", None) is not glogging.Logger.access:
        return True
    return any((
        cfg.accesslog,
        setting(cfg, "logconfig", None),
        setting(cfg, "logconfig_dict", None),
        setting(cfg, "logconfig_json", None),
        setting(cfg, "syslog", False) and not setting(cfg, "disable_redirect_access_to_syslog",
                                                      False),
    ))


def request_hooks(cfg: Any, worker: Any) -> _RequestHooks | None:
    """gunicorn's ``pre_request``/``post_request`` hooks to call around each HTTP request, or
    None when the user set neither: gunicorn's defaults (a debug line, nothing) are not worth a
    call per request, so the server then runs without hooks."""
    pre, post = _user_hook(cfg, "pre_request"), _user_hook(cfg, "post_request")
    if pre is None and post is None:
        return None
    return _RequestHooks(worker, pre, post)


def _user_hook(cfg: Any, name: str) -> Any:
    setting = cfg.settings.get(name)
    if setting is None:
        return None
    hook = setting.get()
    return None if hook is setting.default else hook


class _RequestHooks:
    """Calls the hooks as gunicorn's own workers do: ``pre_request(worker, req)`` before the
    application, ``post_request(worker, req, environ, resp)`` once it is done (also after an
    error or a client that left); environ and resp are always given."""

    def __init__(self, worker: Any, pre: Any, post: Any) -> None:
        self.worker, self.pre, self.post = worker, pre, post

    def request(self, scope: dict[str, Any]) -> RequestInfo:
        return RequestInfo(scope)

    def before(self, request: RequestInfo) -> None:
        if self.pre is not None:
            self.pre(self.worker, request)

    def after(self, request: RequestInfo, cycle: Any) -> None:
        if self.post is None:
            return
        try:
            self.post(self.worker, request, request.environ(), ResponseInfo(cycle))
        except Exception:
            self.worker.log.exception("Exception in post_request hook")


def _error_app(message: str) -> Any:
    """An ASGI app answering 500 with ``message``: what ``--reload`` serves after a SyntaxError."""
    body = f"Application error: {message}\n".encode()

    async def error_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send_plain(send, 500, body)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})

    return error_app
