"""Which modules run compiled, and the switch back to their Python sources.

``setup.py`` compiles the hot path (``COMPILED``: the HTTP server, the transport of forwarded
connections, the distributor's relay and the worker's connections) with Cython where it can. With
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` in the environment when the package is first imported,
the Python sources run instead (as ``AIOHTTP_NO_EXTENSIONS`` does for aiohttp): to debug or profile
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

__all__ = ["COMPILED", "ENV", "compiled_modules", "source_of"]

# Each has a .pxd beside it declaring its classes as extension types (the protocol modules and
# server.access are plain functions and classes, compiled as they are). setup.py reads this tuple.
COMPILED = (
    "channels_distributed.server.flow",
    "channels_distributed.server.head",
    "channels_distributed.server.response",
    "channels_distributed.server.access",
    "channels_distributed.server.context",
    "channels_distributed.server.connection",
    "channels_distributed.server.cycle",
    "channels_distributed.server.http",
    "channels_distributed.server.server",
    "channels_distributed.protocol.codec",
    "channels_distributed.protocol.envelope",
    "channels_distributed.protocol.forwarding",
    "channels_distributed.protocol.keys",
    "channels_distributed.protocol.packing",
    "channels_distributed.transport.resp",
    "channels_distributed.transport.inbox",
    "channels_distributed.transport.scripts",
    "channels_distributed.transport.writer",
    "channels_distributed.transport.streams",
    "channels_distributed.distributor.edge",
    "channels_distributed.distributor.relay",
    "channels_distributed.worker.connection",
)
ENV = "CHANNELS_DISTRIBUTED_NO_EXTENSIONS"
_ROOT = Path(__file__).resolve().parent.parent  # the directory holding the package


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a compiled module before the import system finds its ``.so``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED:
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


if os.environ.get(ENV, "") not in ("", "0"):
    sys.meta_path.insert(0, _SourcesFirst())  # this module runs once, before any of them loads
