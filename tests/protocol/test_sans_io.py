"""protocol/ does no I/O: importing every module of it, and the package above it, loads no
asyncio, Redis client, Django or Channels layer. tests/test_structure.py checks the imports
protocol/ writes; this checks what importing it really loads, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.processes

CODE = """\
import importlib, pkgutil, sys
import channels_distributed.protocol as protocol
for module in pkgutil.iter_modules(protocol.__path__):
    importlib.import_module(f"{protocol.__name__}.{module.name}")
print(sorted({"asyncio", "redis", "django", "channels.layers"} & set(sys.modules)))
"""


def test_importing_protocol_loads_no_io_library() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
