"""The locks in requirements/ (what every test session installs) stay in step with setup.cfg:
every requirement the package declares is pinned in them, the floors lock pins each declared
floor, and the matrix installs from them."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout, or the suite copy nox makes
REQUIREMENTS = ROOT / "requirements"


def _pins(lock: str) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in (REQUIREMENTS / lock).read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;]+)", line)
        if found:
            pins.setdefault(_normal(found.group(1)), set()).add(found.group(2))
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    for extra in config["options.extras_require"].values():
        lines += extra.splitlines()
    return {_normal(re.split(r"[ <>=!;\[]", line.strip(), maxsplit=1)[0])
            for line in lines if line.strip() and not line.strip().startswith("#")}


def test_every_declared_requirement_is_locked() -> None:
    missing = sorted(_declared() - set(_pins("test.txt")))
    assert not missing, f"not in requirements/test.txt (run make lock): {missing}"


def test_the_floors_lock_pins_every_declared_floor() -> None:
    pins = _pins("floors.txt")
    for line in (REQUIREMENTS / "floors.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            assert pins.get(_normal(name)) == {version}, (name, pins.get(_normal(name)))


def test_the_build_and_the_tools_are_locked() -> None:
    assert {"setuptools", "wheel", "cython"} <= set(_pins("build.txt"))
    assert {"nox", "uv", "build", "twine", "virtualenv"} <= set(_pins("tools.txt"))
