"""bench/sources.py: a chosen set of compiled modules runs from its sources, the rest compiled
(what bench/compile_gains.py measures). A checkout's tool: imported by path from bench/."""

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from channels_distributed import compiled

TOOL = Path(__file__).resolve().parents[1] / "bench" / "sources.py"
if not TOOL.exists():
    pytest.skip("no bench/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries bench/", allow_module_level=True)


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sources", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sources = _tool()
P = "channels_distributed."


def test_the_tool_reads_the_packages_list():
    assert sources.compiled_list() == compiled.COMPILED


def test_a_set_grows_to_the_modules_that_cimport_it():
    def resolve(*names: str) -> set[str]:
        return {name.removeprefix(P) for name in sources.resolve(names, compiled.COMPILED)}

    # Short or full names; transport.writer is cimported by no other.
    assert resolve(" transport.writer", "") == {"transport.writer"}
    assert resolve(f"{P}transport.writer") == {"transport.writer"}
    # server.http's .pxd cimports server.head's, server.scope's and server.cycle's: it cannot
    # load without them compiled; server.scope's cimports server.head's. forwarding.peer's
    # cimports forwarding.hub's.
    assert resolve("server.head") == {"server.head", "server.scope", "server.http"}
    assert resolve("server.cycle", "forwarding.hub") == {
        "server.cycle", "server.http", "forwarding.hub", "forwarding.peer"}
    assert resolve("server.http") == {"server.http"}
    with pytest.raises(SystemExit, match=r"'layer' is not a compiled module; compiled: server\."):
        resolve("layer")


def test_the_set_cannot_be_chosen_once_imported():
    importlib.import_module(f"{P}server.http")
    with pytest.raises(RuntimeError, match=r"already imported: channels_distributed\.server\.http"):
        sources.use_sources([f"{P}server.http"])


def test_the_environment_drops_the_packages_switch():
    env = sources.environment([f"{P}forwarding.hub"], {compiled.ENV: "1", "PYTHONPATH": "/x"})
    assert env == {"CD_BENCH_SOURCES": f"{P}forwarding.hub",
                   "PYTHONPATH": f"{sources.SITE}{os.pathsep}/x"}
    assert sources.environment([], {compiled.ENV: "1", "CD_BENCH_SOURCES": "y"}) == {}


@pytest.mark.processes
def test_a_command_runs_the_set_from_its_sources_and_the_rest_compiled(tmp_path):
    # The child starts a grandchild as the callgrind harnesses do (PYTHONPATH passed on).
    script = tmp_path / "which.py"
    script.write_text(
        "import importlib, subprocess, sys\n"
        "import channels_distributed\n"
        "from channels_distributed.compiled import COMPILED\n"
        "print(*(m for m in COMPILED if importlib.import_module(m).__file__.endswith('.py')))\n"
        "if sys.argv[1:] != ['grandchild']:\n"
        "    subprocess.run([sys.executable, __file__, 'grandchild'], check=True, timeout=60)\n"
    )
    chosen = sources.resolve(["forwarding.hub"], compiled.COMPILED)
    # The package's switch in this environment (make test-dev's second run) is dropped.
    result = sources.run(chosen, [sys.executable, str(script)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # Needs the build compiled in place (make dev).
    assert result.stdout.splitlines() == [f"{P}forwarding.hub {P}forwarding.peer"] * 2
