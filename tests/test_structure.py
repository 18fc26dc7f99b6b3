"""The package's shape, held by a test so that later work cannot quietly undo it.

* no import cycles between the package's modules, counting every import: at the top, under
  ``TYPE_CHECKING`` and inside functions (a lazy import is still a dependency); a child that
  imports its own package's ``__init__`` makes a cycle, since the ``__init__`` imports it;
* no module over 400 lines, no function over 60;
* ``protocol/`` and ``legacy/conversion.py`` are sans-I/O: they import no asyncio, redis or
  django, nor the rest of the package (but ``protocol/``'s modules and ``exceptions``).
* in ``server/``, nothing reaches the ``Server`` through an attribute (``self.conn.server.*``):
  connections, request cycles and WebSocket sessions are given what they use when they are made.

The sources are read with ``ast``, never imported, so this runs in the fast tier.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import channels_distributed

PACKAGE = Path(channels_distributed.__file__).resolve().parent
NAME = "channels_distributed"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _targets(module: str, path: Path) -> Iterator[str]:
    """Every module of the package that ``module`` imports, wherever the import stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            # ``from pkg import mod`` imports the module ``pkg.mod`` when there is one.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]  # ``import pkg.mod.attr`` -> pkg.mod
            if name.startswith(NAME) and name != module:
                yield name


GRAPH = {module: set(_targets(module, path)) for module, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles()
    detail = [
        "; ".join(f"{a} -> {b}" for a in cycle for b in sorted(GRAPH[a]) if b in cycle)
        for cycle in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({length} lines, line {node.lineno})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_server_parts_are_given_their_collaborators() -> None:
    reached = []
    for name, path in MODULES.items():
        if not name.startswith(f"{NAME}.server.") or name == f"{NAME}.server.server":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "server":
                reached.append(f"{name} line {node.lineno}: {ast.unparse(node)}")
    assert not reached, (
        "the Server reached through an attribute; pass what is used (the ServerContext, the "
        "Connection) to the constructor instead:\n" + "\n".join(reached)
    )


def _sans_io(name: str) -> bool:
    return name.startswith(f"{NAME}.protocol") or name == f"{NAME}.legacy.conversion"


def test_protocol_is_sans_io() -> None:
    allowed = {f"{NAME}.protocol", f"{NAME}.exceptions"}
    for name, path in MODULES.items():
        if not _sans_io(name):
            continue
        for target in GRAPH[name]:
            assert target.startswith(f"{NAME}.protocol") or target in allowed, (name, target)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""])
                for module in modules:
                    root = module.split(".")[0]
                    assert root not in ("asyncio", "redis", "django", "channels"), (name, module)


def test_the_graph_is_read() -> None:
    # Guards the reader itself: known edges are seen, relative imports included.
    assert f"{NAME}.exceptions" in GRAPH[f"{NAME}.layer"]
    assert f"{NAME}.transport.resp" in GRAPH[f"{NAME}.transport.topology"]
