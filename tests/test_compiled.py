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
    asked = compiled.sources_asked_for(os.environ.get(compiled.ENV, ""))
    if asked == set(compiled.COMPILED) or os.environ.get("CD_EXPECT_BUILD") == "pure":
        assert compiled.compiled_modules() == []
        return
    expected = [name for name in compiled.COMPILED if name not in asked]
    assert compiled.compiled_modules() == expected, (
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


@pytest.mark.processes
def test_the_environment_switch_imports_the_python_sources():
    code = (
        "import importlib\n"
        "from channels_distributed.compiled import COMPILED, compiled_modules\n"
        "files = [importlib.import_module(name).__file__ for name in COMPILED]\n"
        "print(all(f.endswith('.py') for f in files), compiled_modules())\n"
    )
    env = dict(os.environ, **{compiled.ENV: "1"})
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "[]"]


def test_the_switch_can_name_modules():
    assert compiled.sources_asked_for("") == compiled.sources_asked_for("0") == set()
    assert compiled.sources_asked_for("1") == set(compiled.COMPILED)
    asked = " transport.writer, channels_distributed.server.head"
    assert compiled.sources_asked_for(asked) == {
        "channels_distributed.transport.writer", "channels_distributed.server.head",
        # server.head's dependents (their .pxd cimport it) cannot load without it compiled.
        "channels_distributed.server.http"}
    # server.cycle's .pxd is cimported by server.http's: that one cannot load without it.
    assert compiled.sources_asked_for("server.cycle") == {
        "channels_distributed.server.cycle", "channels_distributed.server.http"}
    with pytest.raises(ValueError, match="'layer' is not a compiled module; set it to 1"):
        compiled.sources_asked_for("layer")


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
            needing = compiled.sources_asked_for(module) - {short[module]}
            assert any(max(gains.get(m.removeprefix("channels_distributed."), []), default=0.0) >= 5
                       for m in needing), f"{module}: no gain measured"
        else:
            assert max(gains[module]) >= 5, f"{module} gains under 5%: do not compile it"
