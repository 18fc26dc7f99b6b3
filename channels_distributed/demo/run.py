"""``channels-distributed demo`` (``make demo`` in a checkout): the demo project of this
package run distributed, as a Django user would run theirs. It needs only the package and its
``[demo]`` extra, from any directory.

A private Redis (or ``REDIS_URL``), a fresh SQLite file migrated by ``manage.py prepare``, the
edge (gunicorn with the ASGIWorker running ``channels_distributed.demo.edge``:
``get_edge_application()``) and two ``manage.py runworker`` workers: A serves the chat (route
key and channel ``chat``) and background tasks (channel ``tasks``), B serves the API and the
rest of the site (``api``, ``site``). Then a page, a form POST with its CSRF token, an admin
login and its stylesheet, a page on the other worker that sees the same session, a background
task, and a chat between two WebSocket clients on different workers, printing who served what,
and what an operator sees of it (``manage.py distributed_status``); then everything stops (with
``--serve``, it stays up, with the live status page beside it).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["SETTINGS", "WORKERS", "prepare_command", "run_demo"]

#: The demo's workers: name -> what ``manage.py runworker`` serves.
WORKERS = {"A": ("chat", "tasks"), "B": ("api", "site")}
#: The demo project's settings module.
SETTINGS = "channels_distributed.demo.settings"
#: What the demo needs besides the package: the ``[demo]`` extra.
NEEDS = ("gunicorn", "httpx", "whitenoise")


def run_demo(serve: bool = False) -> int:
    """Redis, the project's edge and two workers, traffic through them, a clean stop; with
    ``serve``, the stop waits for Ctrl-C (or SIGTERM)."""
    import importlib.util

    for needed in NEEDS:
        if importlib.util.find_spec(needed) is None:
            raise ConfigurationError("demo", f"the demo needs {needed}",
                                     "pip install 'channels-distributed[demo]'")
    from ..embedded import RedisServer, server_version

    redis = None
    url = os.environ.get("REDIS_URL")
    if not url:
        redis = RedisServer().start()
        url = redis.url
        print(f"* started a private Redis at {url}: {redis.binary} "
              f"({server_version(redis.binary)})")
    else:
        print(f"* using Redis at {url} (REDIS_URL)")
    procs: list[Any] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cd-demo-") as tmp:
            try:
                return _demo(url, Path(tmp), procs, serve)
            finally:
                _stop_all(procs)
    finally:
        if redis is not None:
            redis.cleanup()
        print("* stopped everything", flush=True)


def prepare_command(manage: list[str], password: str) -> list[str]:
    """``manage.py prepare`` making the admin user with ``password``. One argument, ``--opt=value``:
    as two, a value starting with ``-`` (which ``token_urlsafe`` gave one run in 64) reads as an
    option, and argparse stops the demo with "expected one argument"."""
    return [*manage, "prepare", f"--admin-password={password}"]


def _stop_all(procs: list[Any]) -> None:
    """Stop what the demo started; a second Ctrl-C cannot cut this short and leave processes."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for proc in reversed(procs):
            _stop(proc)
    finally:
        signal.signal(signal.SIGINT, previous)


def _environment(url: str, tmp: Path) -> dict[str, str]:
    # The demo's settings read these three (the test harness sets them too).
    return dict(os.environ, CD_REDIS_URL=url, CD_PREFIX=f"demo{os.getpid()}",
                CD_DB=str(tmp / "db.sqlite3"), DJANGO_SETTINGS_MODULE=SETTINGS,
                PYTHONUNBUFFERED="1")


def _demo(url: str, tmp: Path, procs: list[Any], serve: bool) -> int:
    from ..embedded import free_port

    env = _environment(url, tmp)
    # manage.py of the demo project: Django's own command line with the demo's settings.
    manage = [sys.executable, "-m", "django"]
    password = secrets.token_hex(6)
    # A session of its own, as every child (see _spawn); its output is shown if it fails.
    prepared = subprocess.run(prepare_command(manage, password), env=env, timeout=120,
                              cwd=tmp, capture_output=True, text=True, start_new_session=True)
    if prepared.returncode != 0:
        raise ConfigurationError("demo", f"manage.py prepare failed:\n{prepared.stderr}",
                                 "fix what it reports")
    print(f"* migrated a fresh SQLite database ({env['CD_DB']}); admin user 'admin', "
          f"password {password!r}")
    port = free_port()
    procs.append(_spawn([
        sys.executable, "-m", "gunicorn", "channels_distributed.demo.edge:application",
        "--worker-class", "channels_distributed.gunicorn.ASGIWorker", "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], env, tmp, "edge.log"))
    print(f"* edge: gunicorn (ASGIWorker) running get_edge_application() on "
          f"http://127.0.0.1:{port}; CHANNELS_DISTRIBUTED routes /chat/ and /ws/chat/ to "
          "'chat', /api/ to 'api', the rest to 'site'")
    names = {}
    for name, keys in WORKERS.items():
        worker = _spawn([*manage, "runworker", *keys], env, tmp, f"worker-{name}.log")
        procs.append(worker)
        names[worker.pid] = f"worker {name}"
        print(f"* worker {name} listening: manage.py runworker {' '.join(keys)} "
              f"(pid {worker.pid})")
    base = f"http://127.0.0.1:{port}"
    from .tour import tour

    try:
        for path in ("/chat/", "/api/whoami/"):
            _wait_ready(base + path, procs)
        for line in tour(base, password, names):
            print(f"  {line}", flush=True)
        _show_status(manage, env, tmp)
    except Exception:
        for log in sorted(tmp.glob("*.log")):  # what the processes said, before it is deleted
            print(f"--- {log.name}\n{log.read_text(errors='replace')}", file=sys.stderr)
        raise
    if serve:
        status = free_port()
        procs.append(_spawn([*manage, "distributed_status", "--serve", f"127.0.0.1:{status}"],
                            env, tmp, "status.log"))
        print(f"* the status page: http://127.0.0.1:{status}/ (manage.py distributed_status "
              "--serve)")
        _serve_until_interrupted(base)
    return 0


def _show_status(manage: list[str], env: dict[str, str], tmp: Path) -> None:
    """What an operator sees of it all: ``manage.py distributed_status``, once the processes
    wrote their cards (once a second) after the tour."""
    import time

    time.sleep(1.2)  # the next card of every process carries the tour's figures
    shown = subprocess.run([*manage, "distributed_status"], env=env, cwd=tmp, timeout=60,
                           capture_output=True, text=True, start_new_session=True)
    print("* what an operator sees: manage.py distributed_status")
    for line in (shown.stdout or shown.stderr).splitlines():
        print(f"  {line}", flush=True)


def _serve_until_interrupted(base: str) -> None:
    """Keep everything up for a browser until Ctrl-C (KeyboardInterrupt) or SIGTERM."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"* serving {base}/ (admin: {base}/admin/) until Ctrl-C", flush=True)
    while True:
        signal.pause()


def _spawn(args: list[str], env: dict[str, str], tmp: Path, log: str) -> Any:
    """A child logging to a file of the run (printed if the demo fails). Each child gets a
    session of its own: Ctrl-C in a terminal signals the whole foreground process group, and a
    child still starting up would die of it mid-import, noisily. The demo catches it and stops
    them in order instead (_stop_all). They run in the run's folder: nothing of the current
    directory is imported."""
    with (tmp / log).open("wb") as out:
        return subprocess.Popen(args, env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_ready(url: str, procs: list[Any], timeout: float = 60.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise ConfigurationError("demo", "a demo process exited early",
                                     "see its output above")
        try:
            if httpx.get(url, timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise ConfigurationError("demo", f"{url} did not answer within {timeout:g} s",
                             "see the processes' output above")


def _stop(proc: Any) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
