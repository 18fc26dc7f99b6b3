"""Autobahn|Testsuite's fuzzing client (``wstest -m fuzzingclient``) against a WebSocket URL.

autobahntestsuite runs on Python 2.7 only: ``find_python27`` looks for one, ``install`` puts the
pinned release there with ``pip install --target`` into ``CACHE``, a directory of the user's cache
(``$XDG_CACHE_HOME/channels-distributed``, ``~/.cache`` by default), never in the checkout nor in
the test run's temporary folder (which is removed after each run). Later runs reuse it; delete it
to reinstall. The first install needs the network and takes about a minute (it builds wsaccel); a
CI job may cache the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VERSION = "25.10.1"
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
CASE_COUNT = 247  # the cases CASES select in VERSION: a shorter report means some did not run
CACHE = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
         / "channels-distributed" / f"autobahntestsuite-{VERSION}")
AGENT = "ASGIWorker"
_DONE = "installed.txt"  # written last: a cache directory without it is not used
PYTHON27_MISSING = (
    "Autobahn|Testsuite (autobahntestsuite) runs on Python 2.7, and none was found (looked at "
    "$AUTOBAHN_PYTHON27, python2.7 and python2 on PATH, $PYENV_ROOT/versions/2.7*). Install one "
    "(e.g. `pyenv install 2.7.18`) or point AUTOBAHN_PYTHON27 at its python"
)


class InstallFailed(Exception):
    """pip could not install autobahntestsuite (no network, most often)."""


def find_python27(environ: Mapping[str, str] = os.environ) -> str | None:
    """The path of a working Python 2.7 interpreter, or None."""
    path = environ.get("PATH", "")
    candidates = [
        environ.get("AUTOBAHN_PYTHON27"),
        shutil.which("python2.7", path=path),
        shutil.which("python2", path=path),  # a pyenv shim fails unless 2.7 is selected
    ]
    pyenv = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += [str(python) for python in sorted(pyenv.glob("versions/2.7*/bin/python"))]
    for candidate in candidates:
        if candidate and _is_python27(candidate):
            return candidate
    return None


def _is_python27(python: str) -> bool:
    check = "import sys; sys.exit(sys.version_info[:2] != (2, 7))"
    try:
        done = subprocess.run([python, "-c", check], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def install(python: str, timeout: float = 600) -> Path:
    """autobahntestsuite installed for ``python`` in ``CACHE`` (installed now if need be)."""
    if (CACHE / _DONE).exists():
        return CACHE
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{CACHE.name}-partial-", dir=CACHE.parent))
    try:
        _pip_install(python, staging, timeout)
        # --target leaves out zope.interface's namespace .pth file: make zope a plain package.
        (staging / "zope" / "__init__.py").touch()
        (staging / _DONE).write_text(f"autobahntestsuite=={VERSION} for {python}\n")
        _publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CACHE


def _pip_install(python: str, target: Path, timeout: float) -> None:
    command = [
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-warn-script-location", "--target", str(target), f"autobahntestsuite=={VERSION}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InstallFailed(f"pip did not finish within {timeout} s") from None
    if done.returncode != 0:
        raise InstallFailed(f"pip exited with {done.returncode}: {_tail(done.stderr)}")


def _publish(staging: Path) -> None:
    # A rename is atomic: CACHE is complete whenever it exists. If another run published first,
    # its copy is used and this one is dropped; a directory without _DONE is replaced.
    if CACHE.exists() and not (CACHE / _DONE).exists():
        shutil.rmtree(CACHE, ignore_errors=True)
    try:
        staging.rename(CACHE)
    except OSError:
        if not (CACHE / _DONE).exists():
            raise


def run(python: str, installed: Path, url: str, workdir: Path, timeout: float = 300) -> Any:
    """Run the fuzzing client on ``CASES`` against ``url``; the report's results by case id:
    {"1.1.1": {"behavior": "OK", "behaviorClose": "OK", ...}, ...}."""
    reports = workdir / "reports"
    spec = {
        "outdir": str(reports),
        "servers": [{"agent": AGENT, "url": url}],
        "cases": CASES,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_file = workdir / "fuzzingclient.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(installed)}
    wstest = str(installed / "bin" / "wstest")
    command = [python, wstest, "-m", "fuzzingclient", "-s", str(spec_file)]
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    index = reports / "index.json"
    if done.returncode != 0 or not index.exists():
        output = _tail(done.stdout + done.stderr)
        raise AssertionError(f"wstest exited with {done.returncode}: {output}")
    return json.loads(index.read_text())[AGENT]


def _tail(text: str, size: int = 1500) -> str:
    lines = [line for line in text.splitlines() if "is ignored: it is neither" not in line]
    return "\n".join(lines)[-size:]
