"""bench/ws_echo.py in a tiny mode, so that it cannot rot: it starts our server under gunicorn,
loads it with the picows client in a process of its own and prints the table. What it measures
is not checked: timings belong to the bench, never to a test."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "ws_echo.py"
if not BENCH.exists():
    pytest.skip("no bench/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries bench/", allow_module_level=True)
MISSING = [name for name, found in (("picows", importlib.util.find_spec("picows")),
                                    ("taskset", shutil.which("taskset"))) if found is None]


@pytest.mark.skipif(bool(MISSING), reason=f"the bench needs {', '.join(MISSING)}: "
                    "pip install -e '.[bench]', apt-get install -y util-linux")
def test_the_echo_bench_loads_the_asgi_worker_and_prints_its_row(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH), "--duration", "1", "--warmup", "0.2", "--rounds", "1",
         "--connections", "2", "--server", "ours (ASGIWorker)"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("ours (ASGIWorker)")]
    assert len(rows) == 1, result.stdout
    rate, ratio = rows[0][24:].split()[:2]
    assert float(rate) > 0 and ratio == "1.00x", result.stdout
    assert re.search(r"\d+%$", rows[0]), result.stdout
