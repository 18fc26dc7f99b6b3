"""The server's hot path runs compiled where it was built, and as Python when asked to."""

import os
import subprocess
import sys
from pathlib import Path

import channels_distributed.server.http  # noqa: F401  (imports the whole hot path)
from channels_distributed.server import compiled

SERVER = Path(compiled.__file__).parent


def test_the_hot_path_runs_in_the_build_the_environment_asks_for():
    if os.environ.get(compiled.ENV, "") not in ("", "0"):
        assert compiled.compiled_modules() == []
        return
    assert compiled.compiled_modules() == list(compiled.COMPILED), (
        "the server's hot path is not compiled: run `pip install -e .` (Cython and a C compiler)"
    )
    for name in compiled.COMPILED:
        extension = Path(sys.modules[f"channels_distributed.server.{name}"].__file__)
        for source in (SERVER / f"{name}.py", SERVER / f"{name}.pxd"):
            if source.exists():
                assert extension.stat().st_mtime >= source.stat().st_mtime, (
                    f"{extension.name} is older than {source.name}: rebuild it with "
                    "`pip install -e .` (`make test` does)"
                )


def test_the_environment_switch_imports_the_python_sources():
    code = (
        "import channels_distributed.server.http as http\n"
        "from channels_distributed.server.compiled import compiled_modules\n"
        "print(http.__file__, compiled_modules())\n"
    )
    env = dict(os.environ, **{compiled.ENV: "1"})
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(SERVER / "http.py"), "[]"]
