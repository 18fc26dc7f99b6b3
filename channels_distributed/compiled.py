"""Which modules run compiled, and the switch back to their Python sources.

``setup.py`` compiles the hot path (``COMPILED``: the HTTP server, the batched Redis writer and the
hub and peers of forwarded connections) with Cython where it can. With
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` in the environment when the package is first imported, the
Python sources run instead (as ``AIOHTTP_NO_EXTENSIONS`` does for aiohttp): to debug or profile
with Python tools, or to rule the compiled build out when something looks wrong. Set to module
names instead (comma-separated, with or without the ``channels_distributed.`` prefix: e.g.
``transport.writer,server.head``), only those run from their sources, with the compiled modules
that cimport them (which cannot load without them): to debug one, and to measure what compiling
each one gains (docs/development.rst lists the figures).
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

__all__ = ["COMPILED", "ENV", "compiled_modules", "source_of", "sources_asked_for"]

# Each has a .pxd beside it declaring its classes as extension types; setup.py reads this tuple.
# A module is here only if compiling it saves at least 5% of the instructions of a request (or a
# message) where it runs: docs/development.rst lists the measured gains, module by module.
COMPILED = (
    "channels_distributed.server.flow",
    "channels_distributed.server.head",
    "channels_distributed.server.response",
    "channels_distributed.server.context",
    "channels_distributed.server.base",
    "channels_distributed.server.cycle",
    "channels_distributed.server.http",
    "channels_distributed.transport.writer",
    "channels_distributed.transport.hub",
    "channels_distributed.transport.streams",
)
ENV = "CHANNELS_DISTRIBUTED_NO_EXTENSIONS"
_ROOT = Path(__file__).resolve().parent.parent  # the directory holding the package


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a compiled module before the import system finds its ``.so``."""

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def source_of(module: str) -> Path:
    """The ``.py`` file of a module of the package."""
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


def compiled_modules() -> list[str]:
    """The names of the modules in ``COMPILED`` that were imported as compiled extensions."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    names = []
    for name in COMPILED:
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "")).endswith(suffixes):
            names.append(name)
    return names


def sources_asked_for(value: str) -> frozenset[str]:
    """The modules that ``value`` (the switch's setting) runs from their sources."""
    value = value.strip()
    if value in ("", "0"):
        return frozenset()
    if value == "1":
        return frozenset(COMPILED)
    names = set()
    for name in filter(None, (part.strip() for part in value.split(","))):
        full = name if name.startswith("channels_distributed.") else f"channels_distributed.{name}"
        if full not in COMPILED:
            raise ValueError(f"{ENV}={value!r}: {name!r} is not a compiled module; set it to 1 "
                             f"for all of them, or to names among {', '.join(COMPILED)}")
        names.add(full)
    return frozenset(_with_dependents(names))


def _with_dependents(names: set[str]) -> set[str]:
    # A compiled module that cimports another (its .pxd says so) needs that one compiled: with
    # its sources it would not load ("size changed"). Such dependents run from sources too.
    cimports = {name: source_of(name).with_suffix(".pxd") for name in COMPILED}
    grown = True
    while grown:
        grown = False
        for name, pxd in cimports.items():
            text = pxd.read_text() if name not in names and pxd.exists() else ""
            if any(_cimports(text, other) for other in names):
                names.add(name)
                grown = True
    return names


def _cimports(pxd_text: str, module: str) -> bool:
    package, _, leaf = module.rpartition(".")
    return (f"from {module} cimport" in pxd_text
            or f"from {package} cimport {leaf}" in pxd_text)


_ASKED = sources_asked_for(os.environ.get(ENV, ""))
if _ASKED:
    sys.meta_path.insert(0, _SourcesFirst(_ASKED))  # this runs once, before any of them loads
