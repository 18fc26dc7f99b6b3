"""Which of the server's modules run compiled, and the switch back to their Python sources.

``setup.py`` compiles the hot path (``COMPILED``) with Cython where it can. With
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` in the environment when the server is first imported, the
Python sources run instead (as ``AIOHTTP_NO_EXTENSIONS`` does for aiohttp): to debug or profile
with Python tools, or to rule the compiled build out when something looks wrong.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["COMPILED", "ENV", "compiled_modules", "use_sources"]

COMPILED = ("flow", "head", "cycle", "http", "server")
ENV = "CHANNELS_DISTRIBUTED_NO_EXTENSIONS"
_PACKAGE = __name__.rpartition(".")[0]
_HERE = Path(__file__).resolve().parent


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a compiled module before the import system finds its ``.so``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != _PACKAGE or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / f"{name}.py")


def use_sources() -> None:
    """Import the hot path from its Python sources (only modules not imported yet)."""
    if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def compiled_modules() -> list[str]:
    """The names of the server modules that were imported as compiled extensions."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    names = []
    for name in COMPILED:
        module = sys.modules.get(f"{_PACKAGE}.{name}")
        if module is not None and str(getattr(module, "__file__", "")).endswith(suffixes):
            names.append(name)
    return names


if os.environ.get(ENV, "") not in ("", "0"):
    use_sources()
