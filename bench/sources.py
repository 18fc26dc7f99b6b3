"""Run a command, or this Python process, with a chosen set of compiled modules from their sources.

    .venv/bin/python bench/sources.py --set forwarding.hub,forwarding.peer -- \\
        .venv/bin/python bench/callgrind_distributed.py --rounds 1
    .venv/bin/python bench/sources.py --set server.head      # prints the set, with dependents

The package's switch (``CHANNELS_DISTRIBUTED_NO_EXTENSIONS``, channels_distributed/compiled.py)
runs all its compiled modules from their sources, or none. To measure what compiling some of them
gains (``bench/compile_gains.py``), or to debug one with the others compiled, this tool runs a
set of them (names of ``COMPILED``, with or without the ``channels_distributed.`` prefix) from
their ``.py`` files and the rest compiled. The set grows to its dependents: a compiled module
whose ``.pxd`` cimports one of the set cannot load while that one runs from its sources (Cython
checks the types it cimports: "size changed"), so it runs from its sources too.

How: the command runs with ``bench/sources_site`` first on ``PYTHONPATH`` and the set in
``CD_BENCH_SOURCES``; that folder's ``sitecustomize``, which every Python process imports at
start (the children of the command too, where they pass ``PYTHONPATH`` on), puts a finder first
on ``sys.meta_path`` that imports the modules of the set from their ``.py`` files (a
``sitecustomize`` of the interpreter's own, if any, is hidden under the tool). In this
process, ``use_sources()`` does the same (before the package is first imported). The build must
be compiled in place (``make dev``); nothing here imports the package.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "channels_distributed"


def _package_parent() -> Path:
    """Where the package the command will import lives (a checkout, or site-packages when the
    tests run against an installed wheel): found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not importable here")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


ROOT = _package_parent()
SET_ENV = "CD_BENCH_SOURCES"  # the set, full names separated by commas
SITE = Path(__file__).resolve().parent / "sources_site"  # holds the sitecustomize


def compiled_list() -> tuple[str, ...]:
    """``COMPILED``, read from compiled.py's text (importing the package would load them)."""
    tree = ast.parse((ROOT / PACKAGE / "compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError(f"COMPILED not found in {PACKAGE}/compiled.py")


def source_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def resolve(names: Iterable[str], compiled: Sequence[str] | None = None) -> frozenset[str]:
    """The modules named (short or full names of compiled modules) and their dependents."""
    compiled = compiled_list() if compiled is None else tuple(compiled)
    chosen = set()
    for name in filter(None, (name.strip() for name in names)):
        full = name if name.startswith(f"{PACKAGE}.") else f"{PACKAGE}.{name}"
        if full not in compiled:
            short = ", ".join(module.removeprefix(f"{PACKAGE}.") for module in compiled)
            raise SystemExit(f"{name!r} is not a compiled module; compiled: {short} (to measure "
                             "another, add it to COMPILED with a .pxd and run `make dev`)")
        chosen.add(full)
    return frozenset(with_dependents(chosen, compiled))


def with_dependents(names: set[str], compiled: Sequence[str]) -> set[str]:
    """``names`` and the compiled modules whose ``.pxd`` cimports one of them, transitively."""
    names = set(names)
    pxds = {module: source_of(module).with_suffix(".pxd") for module in compiled}
    grown = True
    while grown:
        grown = False
        for module, pxd in pxds.items():
            text = pxd.read_text() if module not in names and pxd.exists() else ""
            if any(cimports(text, other) for other in names):
                names.add(module)
                grown = True
    return names


def cimports(pxd_text: str, module: str) -> bool:
    """Whether a ``.pxd`` file's text cimports ``module`` (either form of the statement)."""
    package, _, leaf = module.rpartition(".")
    return f"from {module} cimport" in pxd_text or f"from {package} cimport {leaf}" in pxd_text


class SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of the modules of the set before the import system finds a ``.so``."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def use_sources(modules: Iterable[str]) -> None:
    """In this process, import ``modules`` (full names, dependents included) from their sources."""
    loaded = [name for name in modules if name in sys.modules]
    if loaded:
        raise RuntimeError(f"already imported: {', '.join(sorted(loaded))}")
    sys.meta_path.insert(0, SourcesFirst(modules))


def environment(modules: Iterable[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (this process's environment) for a command that runs ``modules`` from sources.

    The package's own switch is removed: it would run every compiled module from its sources."""
    env = dict(os.environ if base is None else base)
    env.pop("CHANNELS_DISTRIBUTED_NO_EXTENSIONS", None)
    env.pop(SET_ENV, None)
    modules = sorted(modules)
    if modules:
        env[SET_ENV] = ",".join(modules)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(SITE), env.get("PYTHONPATH"))))
    return env


def run(modules: Iterable[str], command: Sequence[str],
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command)`` with ``modules`` from their sources (``kwargs`` passed on)."""
    return subprocess.run(command, env=environment(modules), text=True, check=False, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", required=True,
                        help="compiled modules to run from their sources, comma-separated")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command to run (after --); none: print the set")
    args = parser.parse_args(argv)
    modules = resolve(args.set.split(","))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    print("from sources:", ", ".join(sorted(modules)), file=sys.stderr, flush=True)
    if not command:
        return 0
    return run(modules, command).returncode


if __name__ == "__main__":
    sys.exit(main())
