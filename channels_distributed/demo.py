"""``channels-distributed demo`` (``make demo``): the test project (``testproject/``) run
distributed, as a Django user would run theirs.

A private Redis (or ``REDIS_URL``), a fresh SQLite file migrated by ``manage.py prepare``, the
edge (gunicorn with the ASGIWorker running ``testproject.edge_asgi``: ``get_edge_application()``)
and two ``manage.py runworker`` workers: A serves the chat (route key and channel ``chat``) and
background tasks (channel ``tasks``), B serves the API and the rest of the site (``api``,
``site``). Then a page, a form POST with its CSRF token, an admin login, a page on the other
worker that sees the same session, a background task, and a chat between two WebSocket clients
on different workers, printing who served what; then everything stops.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError

__all__ = ["WORKERS", "find_project", "prepare_command", "run_demo"]

#: The demo's workers: name -> what ``manage.py runworker`` serves.
WORKERS = {"A": ("chat", "tasks"), "B": ("api", "site")}


def find_project() -> Path:
    """The folder holding ``testproject/``: the current directory or the checkout."""
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (folder / "testproject" / "manage.py").is_file():
            return folder
    raise ConfigurationError("demo", "the demo runs the project in testproject/, which is "
                             "not in the current directory", "run it from a checkout of "
                             "channels-distributed: make demo")


def run_demo(serve: bool = False) -> int:
    """Redis, the project's edge and two workers, traffic through them, a clean stop; with
    ``serve``, the stop waits for Ctrl-C (or SIGTERM)."""
    import importlib.util

    for needed in ("gunicorn", "httpx"):
        if importlib.util.find_spec(needed) is None:
            raise ConfigurationError("demo", f"the demo needs {needed}",
                                     "pip install 'channels-distributed[demo]'")
    from .embedded import RedisServer, server_version

    root = find_project()
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
                return _demo(root, url, Path(tmp), procs, serve)
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


def _environment(root: Path, url: str, tmp: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    # testproject/settings.py reads these three (the harness' and the demo's own settings).
    return dict(os.environ, CD_REDIS_URL=url, CD_PREFIX=f"demo{os.getpid()}",
                CD_DB=str(tmp / "db.sqlite3"), DJANGO_SETTINGS_MODULE="testproject.settings",
                PYTHONPATH=path, PYTHONUNBUFFERED="1")


def _demo(root: Path, url: str, tmp: Path, procs: list[Any], serve: bool) -> int:
    from .embedded import free_port

    env = _environment(root, url, tmp)
    manage = [sys.executable, str(root / "testproject" / "manage.py")]
    password = secrets.token_hex(6)
    # A session of its own, as every child (see _spawn); its output is shown if it fails.
    prepared = subprocess.run(prepare_command(manage, password), env=env, timeout=120,
                              cwd=root, capture_output=True, text=True, start_new_session=True)
    if prepared.returncode != 0:
        raise ConfigurationError("demo", f"manage.py prepare failed:\n{prepared.stderr}",
                                 "fix what it reports")
    print(f"* migrated a fresh SQLite database ({env['CD_DB']}); admin user 'admin', "
          f"password {password!r}")
    port = free_port()
    procs.append(_spawn([
        sys.executable, "-m", "gunicorn", "testproject.edge_asgi:application",
        "--worker-class", "channels_distributed.gunicorn.ASGIWorker", "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], env, root, tmp / "edge.log"))
    print(f"* edge: gunicorn (ASGIWorker) running get_edge_application() on "
          f"http://127.0.0.1:{port}; CHANNELS_DISTRIBUTED routes /chat/ and /ws/chat/ to "
          "'chat', /api/ to 'api', the rest to 'site'")
    names = {}
    for name, keys in WORKERS.items():
        worker = _spawn([*manage, "runworker", *keys], env, root, tmp / f"worker-{name}.log")
        procs.append(worker)
        names[worker.pid] = f"worker {name}"
        print(f"* worker {name} listening: manage.py runworker {' '.join(keys)} "
              f"(pid {worker.pid})")
    base = f"http://127.0.0.1:{port}"
    from .demo_tour import tour

    try:
        for path in ("/chat/", "/api/whoami/"):
            _wait_ready(base + path, procs)
        for line in tour(base, password, names):
            print(f"  {line}", flush=True)
    except Exception:
        for log in sorted(tmp.glob("*.log")):  # what the processes said, before it is deleted
            print(f"--- {log.name}\n{log.read_text(errors='replace')}", file=sys.stderr)
        raise
    if serve:
        _serve_until_interrupted(base)
    return 0


def _serve_until_interrupted(base: str) -> None:
    """Keep everything up for a browser until Ctrl-C (KeyboardInterrupt) or SIGTERM."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"* serving {base}/ (admin: {base}/admin/) until Ctrl-C", flush=True)
    while True:
        signal.pause()


def _spawn(args: list[str], env: dict[str, str], root: Path, log: Path) -> Any:
    """A child logging to a file of the run (printed if the demo fails). Each child gets a
    session of its own: Ctrl-C in a terminal signals the whole foreground process group, and a
    child still starting up would die of it mid-import, noisily. The demo catches it and stops
    them in order instead (_stop_all)."""
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
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
