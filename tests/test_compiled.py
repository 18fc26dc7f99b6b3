"""The hot path runs compiled where it was built, and as Python when asked to."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from channels_distributed import compiled


def test_the_hot_path_runs_in_the_build_the_environment_asks_for():
    for name in compiled.COMPILED:
        importlib.import_module(name)
    # nox says which build the installed wheel is: a wheel built without a compiler has none.
    if compiled.sources_asked_for() or os.environ.get("CD_EXPECT_BUILD") == "pure":
        assert compiled.compiled_modules() == []
        return
    assert compiled.compiled_modules() == list(compiled.COMPILED), (
        "the hot path is not compiled: run `pip install -e .` (Cython and a C compiler)"
    )
    if not (Path(compiled.__file__).parents[1] / "setup.py").exists():
        return  # an installed wheel: its extensions were built from its sources at once
    for name in compiled.COMPILED:  # a checkout: the in-place build must follow every edit
        extension = Path(sys.modules[name].__file__)
        source = compiled.source_of(name)
        for path in (source, source.with_suffix(".pxd")):
            if path.exists():
                assert extension.stat().st_mtime >= path.stat().st_mtime, (
                    f"{extension.name} is older than {path.name}: rebuild it with "
                    "`pip install -e .` (`make test` does)"
                )


def test_the_switch_asks_for_the_sources_when_set_to_anything_but_0():
    """One meaning at build time (setup.py asks this function) and at run time."""
    for value in ("", "0"):
        assert compiled.sources_asked_for(value) is False, value
    for value in ("1", "yes", "true", "transport.writer", " 0", "00"):
        assert compiled.sources_asked_for(value) is True, value


@pytest.mark.processes
@pytest.mark.parametrize(("value", "sources"),
                         [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_environment_switch_imports_the_python_sources(value, sources):
    code = (
        "import importlib\n"
        "import channels_distributed\n"
        "from channels_distributed.compiled import COMPILED, compiled_modules\n"
        "files = [importlib.import_module(name).__file__ for name in COMPILED]\n"
        "print(all(f.endswith('.py') for f in files), compiled_modules() == list(COMPILED))\n"
    )
    env = dict(os.environ, **{compiled.ENV: value})
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    if sources or os.environ.get("CD_EXPECT_BUILD") == "pure":  # pure: built without a compiler
        assert result.stdout.split() == ["True", "False"]
    else:
        assert result.stdout.split() == ["False", "True"]


def _cimporting(module: str) -> set[str]:
    """The compiled modules whose .pxd cimports ``module``, directly or not: those cannot load
    while it runs from its sources (bench/sources.py runs them from their sources with it)."""
    package, _, leaf = module.rpartition(".")
    found: set[str] = set()
    for name in compiled.COMPILED:
        pxd = compiled.source_of(name).with_suffix(".pxd")
        text = pxd.read_text() if pxd.exists() else ""
        if f"from {module} cimport" in text or f"from {package} cimport {leaf}" in text:
            found |= {name} | _cimporting(name)
    return found


def _table(marker: str) -> list[list[str]]:
    """The rows (cells split on spaces) of the table after ``marker`` in docs/development.rst."""
    # The checkout's docs, which the nox sessions copy beside the tests.
    page = Path(__file__).resolve().parents[1] / "docs" / "development.rst"
    text = page.read_text()
    table = text[text.index(marker):].split("\n\n")[1]
    return [line.split() for line in table.splitlines()[3:-1]]  # past the header, to the end


def _gain(cell: str) -> float | None:
    return None if cell == "--" else float(cell.rstrip("%"))


def test_the_docs_give_each_compiled_unit_its_gain():
    """The rule of the compiled build (issue 25): a unit, the modules that run together on a
    path, is compiled when compiling it saves at least 5% of some path's instructions."""
    units: dict[str, list[tuple[float | None, str]]] = {}
    for unit, _path, _compiled, _source, gain, flag in _table(".. compile-units"):
        units.setdefault(unit, []).append((_gain(gain), flag))
    assert units, "no unit in the table"
    for unit, cells in units.items():
        admitted = max(gain or 0.0 for gain, _ in cells) >= 5
        assert {flag for _, flag in cells} == ({"yes"} if admitted else {"no"}), unit


def test_the_docs_give_each_compiled_module_its_unit_and_gain():
    """Each module measured is listed with its unit, its own gain and whether it is compiled,
    truly: a module of a compiled unit is compiled unless it saves nothing measurable (under 1%,
    twice the spread of repeated runs, on every path); a module without a figure of its own is
    one that other compiled modules cimport (it cannot run from its sources without them), or
    one whose .pxd cimports others (server.http: from its sources, it is the unit's figure)."""
    admitted = {row[0] for row in _table(".. compile-units") if row[-1] == "yes"}
    rows: dict[str, list[tuple[str, float | None, str]]] = {}
    for cells in _table(".. compile-gains"):
        rows.setdefault(cells[0], []).append((cells[1], _gain(cells[-2]), cells[-1]))
    short = {name.removeprefix("channels_distributed."): name for name in compiled.COMPILED}
    assert set(short) <= set(rows), f"not in the table: {sorted(set(short) - set(rows))}"
    for module, cells in rows.items():
        assert len({unit for unit, _, _ in cells}) == 1, f"{module}: one unit per module"
        unit = cells[0][0]
        assert {flag for _, _, flag in cells} == ({"yes"} if module in short else {"no"}), module
        gains = [gain for _, gain, _ in cells if gain is not None]
        if module not in short:
            assert unit not in admitted or max(gains, default=0.0) < 1, (
                f"{module} saves {max(gains)}% in a compiled unit: compile it")
            continue
        assert unit in admitted, f"{module}: its unit {unit} is not compiled"
        if gains:
            assert max(gains) >= 1, f"{module} saves nothing measurable: do not compile it"
        else:
            assert _cimporting(short[module]) or _cimported(short[module]), (
                f"{module}: no gain measured")


def _cimported(module: str) -> set[str]:
    """The other compiled modules ``module``'s .pxd cimports: a module that reads their fields
    at C level measures, from its sources, the unit it heads."""
    pxd = compiled.source_of(module).with_suffix(".pxd")
    text = pxd.read_text() if pxd.exists() else ""
    return {name for name in compiled.COMPILED
            if name != module and name in _cimport_targets(text)}


def _cimport_targets(pxd_text: str) -> set[str]:
    found = set()
    for line in pxd_text.splitlines():
        words = line.replace(",", " ").split()
        if words[:1] == ["from"] and "cimport" in words:
            package = words[1]
            found.add(package)
            found.update(f"{package}.{name}" for name in words[words.index("cimport") + 1:])
    return found
