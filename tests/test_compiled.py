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


def _gain_rows() -> dict[str, list[tuple[float | None, str]]]:
    """docs/development.rst's table of compile gains: module -> its (gain %, compiled) cells."""
    # The checkout's docs, which the nox sessions copy beside the tests.
    page = Path(__file__).resolve().parents[1] / "docs" / "development.rst"
    text = page.read_text()
    table = text[text.index(".. compile-gains"):].split("\n\n")[1]
    rows: dict[str, list[tuple[float | None, str]]] = {}
    for line in table.splitlines():
        cells = line.split()
        if cells and "." in cells[0] and not set(cells[0]) <= {"="}:
            gain = None if cells[-2] == "--" else float(cells[-2].rstrip("%"))
            rows.setdefault(cells[0], []).append((gain, cells[-1]))
    return rows


def test_the_docs_give_each_compiled_module_its_gain():
    """Each module measured is listed with its gain and whether it is compiled, truly; and the
    rule holds: compiled only where it gains at least 5% in some workload. A module without a
    figure of its own is one that compiled modules cimport (it cannot run from its sources
    without them): it is compiled for the gain of one of those."""
    rows = _gain_rows()
    short = {name.removeprefix("channels_distributed."): name for name in compiled.COMPILED}
    assert set(short) <= set(rows), f"not in the table: {sorted(set(short) - set(rows))}"
    gains = {module: [gain for gain, _ in cells if gain is not None]
             for module, cells in rows.items()}
    for module, cells in rows.items():
        assert {flag for _, flag in cells} == ({"yes"} if module in short else {"no"}), module
        if module not in short:
            assert max(gains[module], default=0.0) < 5, f"{module} gains 5%: compile it"
        elif not gains[module]:
            needing = _cimporting(short[module])
            assert any(max(gains.get(m.removeprefix("channels_distributed."), []), default=0.0) >= 5
                       for m in needing), f"{module}: no gain measured"
        else:
            assert max(gains[module]) >= 5, f"{module} gains under 5%: do not compile it"
