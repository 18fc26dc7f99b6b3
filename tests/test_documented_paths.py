"""Every import path the documentation names resolves, so that moving a module cannot quietly
break what users copied from README.rst or docs/*.rst.

A path is a dotted ``channels_distributed.<module>[.<name>]`` (as in ``BACKEND`` settings and the
text) or a ``from channels_distributed[.<module>] import <names>`` line. Django check ids
(``channels_distributed.E001``) are names of checks, not paths. Also runs from nox's copy of the
tests, against the installed package: the copy carries README.rst and docs/.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
DOTTED = re.compile(r"\bchannels_distributed(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"^\s*from (channels_distributed(?:\.\w+)*) import ([\w, ]+)$", re.M)
CHECK_ID = re.compile(r"\.[EW]\d{3}$")


def _documented() -> set[str]:
    paths = set()
    for page in PAGES:
        text = page.read_text()
        paths.update(path for path in DOTTED.findall(text) if not CHECK_ID.search(path))
        for module, names in FROM_IMPORT.findall(text):
            paths.update(f"{module}.{name.strip()}" for name in names.split(",") if name.strip())
    return paths


PATHS = sorted(_documented())


def _resolve(path: str) -> Any:
    """Import the longest module prefix of ``path``, then look the rest up as attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is None or not ".".join(parts[:cut]).startswith(exc.name):
                raise  # the module exists, one of its own imports is missing
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(path)


def test_the_pages_name_paths() -> None:
    # Guards the reader: paths known to be documented are found.
    assert {"channels_distributed.Message", "channels_distributed.interfaces.adapt",
            "channels_distributed.layer.RedisChannelLayer",
            "channels_distributed.Node"} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS)
def test_a_documented_path_resolves(path: str) -> None:
    assert _resolve(path) is not None, path
