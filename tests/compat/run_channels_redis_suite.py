"""Run channels_redis 4.3.0's own ``tests/test_core.py`` against channels_distributed's layer.

    .venv/bin/python tests/compat/run_channels_redis_suite.py

Why: the layer is sold as a drop-in for channels_redis, so channels_redis's test suite is the
most neutral statement of the contract. The suite is downloaded at run time (the sdist, with pip)
rather than vendored, so the tests are exactly upstream's and carry upstream's licence.

How:
- ``tests/test_core.py`` is extracted from the sdist into a temporary directory;
- a shim ``channels_redis`` package (``shim/channels_redis``) goes first on the pytest subprocess's
  ``sys.path``; its ``core.RedisChannelLayer`` is a thin subclass of ours whose ``hosts`` defaults
  to a private redis-server this script starts (upstream calls ``RedisChannelLayer()`` bare, which
  would mean the shared Redis on localhost:6379);
- ``shim/compat_conftest.py`` (copied as ``conftest.py``) rebinds upstream's ``TEST_HOSTS`` and
  ``MULTIPLE_TEST_HOSTS`` globals to that private server; no test body is edited;
- the few tests that reach into channels_redis internals are deselected by name, with the reason;
- pytest runs with its own ini (``-c``, ``--rootdir``) so the project's setup.cfg settings
  (``filterwarnings = error``, ``DJANGO_SETTINGS_MODULE``) do not leak into upstream's suite.

``--topology cluster`` (the first argument) runs it on a local Redis Cluster of three primaries
instead of one server: the layer is given one node's URL, and upstream's sharded hosts are the
three nodes. Extra arguments go to pytest (``-k expiry``, ``--runxfail``, ``-x`` ...).

Exit status: 0 when every selected test passed (or the sdist could not be downloaded: the suite is
then reported as SKIPPED, except under CI=true, where that fails), non-zero otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout: import the working tree

from channels_distributed.embedded import RedisCluster, RedisServer  # noqa: E402

PACKAGE = "channels_redis"
VERSION = "4.3.0"
SUITE = "tests/test_core.py"
PER_TEST_TIMEOUT = 30  # upstream's expiry tests sleep ~5 s in real time; upstream uses 10 s
PIP_TIMEOUT = 180

# Tests that read or poke channels_redis internals rather than the channel layer API. Each one is
# deselected by exact name; the runner refuses to run if a name no longer exists upstream.
DESELECTED = {
    "test_default_group_key_format":
        "calls the private channels_redis method _group_key() and checks its key layout",
    "test_custom_group_key_format":
        "calls the private channels_redis method _group_key() and checks its key layout",
    "test_receive_buffer_respects_capacity":
        "fills the private channels_redis attribute receive_buffer (a per-channel queue)",
}

# Upstream's suite imports these; a missing one would show up as a confusing collection error.
REQUIRED_MODULES = {
    "async_timeout": "async_timeout",
    "pytest_asyncio": "pytest-asyncio",
    "pytest_timeout": "pytest-timeout",
}

PYTEST_INI = f"""\
# Written by run_channels_redis_suite.py: upstream's own pytest settings (setup.cfg of
# channels_redis {VERSION}) plus a per-test timeout, and nothing from channels-distributed's config.
[pytest]
testpaths = tests
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = {PER_TEST_TIMEOUT}
"""


def say(text: str) -> None:
    print(f"[channels_redis compat] {text}", flush=True)


def download_suite(workdir: Path) -> Path | None:
    """Fetch the sdist with pip and extract the test module; None when it cannot be downloaded."""
    dist = workdir / "dist"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", str(dist)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    archives = sorted(dist.glob(f"{PACKAGE}-{VERSION}.tar.gz")) if result.returncode == 0 else []
    if not archives:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        say(f"pip download failed: {tail[0] if tail else 'no output'}")
        return None
    target = workdir / SUITE
    target.parent.mkdir(parents=True)
    with tarfile.open(archives[0]) as archive:
        # Read the one member we need instead of extractall(): no path traversal to care about.
        member = archive.extractfile(f"{PACKAGE}-{VERSION}/{SUITE}")
        if member is None:
            raise SystemExit(f"{SUITE} is missing from {archives[0].name}")
        target.write_bytes(member.read())
    return target


def check_deselections(suite: Path) -> None:
    source = suite.read_text()
    missing = [name for name in DESELECTED if f"def {name}(" not in source]
    if missing:
        raise SystemExit(f"deselected tests no longer exist upstream: {missing}; update DESELECTED")


def check_requirements() -> None:
    missing = [pip for module, pip in REQUIRED_MODULES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise SystemExit(
            f"the channels_redis suite needs {', '.join(missing)}: "
            f"pip install -e '.[test]' (or pip install {' '.join(missing)})")


def prepare(workdir: Path) -> Path:
    """Lay out the shim package and the conftest; returns the directory to put on sys.path."""
    shim = workdir / "shim"
    shutil.copytree(HERE / "shim" / PACKAGE, shim / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(HERE / "shim" / "compat_conftest.py", workdir / "conftest.py")
    (workdir / "pytest.ini").write_text(PYTEST_INI)
    return shim


def run_pytest(workdir: Path, shim: Path, server: RedisServer | RedisCluster,
               extra_args: list[str]) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), str(REPO),
                                                      env.get("PYTHONPATH")]))
    env["CHANNELS_REDIS_COMPAT_HOST"] = server.url.removesuffix("/0")
    if isinstance(server, RedisCluster):
        env["CHANNELS_REDIS_COMPAT_MULTIPLE"] = json.dumps(server.urls)
    env["CHANNELS_REDIS_COMPAT_RESULTS"] = str(workdir / "results.json")
    env.pop("DJANGO_SETTINGS_MODULE", None)  # upstream runs with Django unconfigured
    command = [sys.executable, "-m", "pytest", "-c", str(workdir / "pytest.ini"),
               "--rootdir", str(workdir), "-p", "no:cacheprovider", "-p", "no:django",
               "-q", "-rfEX", *extra_args, SUITE]
    for name in DESELECTED:
        command += ["--deselect", f"{SUITE}::{name}"]
    return subprocess.run(command, cwd=workdir, env=env).returncode


def summarize(workdir: Path, returncode: int) -> int:
    results = workdir / "results.json"
    if not results.exists():
        say(f"FAILED: pytest ended before reporting (exit status {returncode})")
        return returncode or 1
    data = json.loads(results.read_text())
    summary = ", ".join(f"{n} {kind}" for kind, n in data["counts"].items() if n)
    ran = sum(n for kind, n in data["counts"].items() if kind != "deselected")
    # Belt and braces: pytest exits 5 when nothing ran, and that must not count as a pass.
    ok = returncode == 0 and ran > 0 and not data["failed"]
    say(f"{'PASSED' if ok else 'FAILED'}: channels_redis {VERSION} {SUITE} against "
        f"channels_distributed: {summary}")
    for nodeid in data["failed"]:
        say(f"  failed: {nodeid}")
    return 0 if ok else (returncode or 1)


def main() -> int:
    check_requirements()
    workdir = Path(tempfile.mkdtemp(prefix="cd-compat-"))
    server: RedisServer | RedisCluster | None = None
    args = sys.argv[1:]
    topology = "single"
    if args[:1] == ["--topology"]:
        topology, args = args[1], args[2:]
    try:
        suite = download_suite(workdir)
        if suite is None:
            ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
            say(f"{'FAILED' if ci else 'SKIPPED'}: the channels_redis compatibility suite was "
                f"not run because the {PACKAGE}=={VERSION} sdist could not be downloaded (no "
                "network? it needs PyPI)")
            return 1 if ci else 0
        check_deselections(suite)
        for name, reason in DESELECTED.items():
            say(f"deselected {name}: {reason}")
        shim = prepare(workdir)
        # Private, on free loopback ports; never :6379.
        server = RedisCluster(3).start() if topology == "cluster" else RedisServer().start()
        say(f"running {SUITE} against channels_distributed on {topology} {server.url}")
        return summarize(workdir, run_pytest(workdir, shim, server, args))
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
