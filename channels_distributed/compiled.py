"""Which modules run compiled, and the switch back to their Python sources.

``setup.py`` compiles the hot path (``COMPILED``: the HTTP server, the WebSocket fast path, and
the modules of a forwarded request whose compiling saves instructions: the batched Redis writer,
the hub and peers of forwarded connections, the envelope and codec, the edge and its relay) with
Cython where it can.
One switch, with one meaning at build and at run time:
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS`` set to a non-empty value other than ``0`` asks for the
Python sources (unset, empty or ``0``: the compiled build). At build time the wheel then carries
no extensions; when the package is first imported, the sources of every module
of ``COMPILED`` run even where their extensions exist (as ``AIOHTTP_NO_EXTENSIONS`` does for
aiohttp): to debug or profile with Python tools, or to rule the compiled build out when something
looks wrong. Running some modules from their sources and others compiled, and measuring what
compiling a set of them gains, are the bench tools' business (``bench/sources.py``,
``bench/compile_gains.py``).

This module imports nothing but the standard library: ``setup.py`` and ``make dev`` load it by
path, without the package.
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

# setup.py reads this tuple. The rule (docs/development.rst lists the measured gains): a unit of
# modules that run together on one path is compiled when it saves at least 5% of that path's
# instructions, and each module of it that saves something measurable on its own (1%) is here.
# A .pxd beside a module declares its classes as extension types (the server's, the writer's, the
# forwarding hub's and peers'); the others' classes stay Python classes, their code compiled.
COMPILED = (
    "channels_distributed.server.flow",
    "channels_distributed.server.head",
    "channels_distributed.server.response",
    "channels_distributed.server.context",
    "channels_distributed.server.base",
    "channels_distributed.server.cycle",
    "channels_distributed.server.scope",
    "channels_distributed.server.http",
    "channels_distributed.server.framing",
    "channels_distributed.transport.writer",
    "channels_distributed.forwarding.hub",
    "channels_distributed.forwarding.peer",
    "channels_distributed.protocol.envelope",
    "channels_distributed.protocol.codec",
    "channels_distributed.distributor.relay",
    "channels_distributed.distributor.edge",
)
ENV = "CHANNELS_DISTRIBUTED_NO_EXTENSIONS"
_ROOT = Path(__file__).resolve().parent.parent  # the directory holding the package


def sources_asked_for(value: str | None = None) -> bool:
    """Whether the switch (``value``, else the environment's) asks for the Python sources."""
    if value is None:
        value = os.environ.get(ENV, "")
    return value not in ("", "0")


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


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a compiled module before the import system finds its ``.so``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


if sources_asked_for():
    # The package imports this module first (channels_distributed/__init__.py): this runs once,
    # before any compiled module loads.
    sys.meta_path.insert(0, _SourcesFirst())
