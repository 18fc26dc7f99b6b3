"""bench/server.py in a tiny mode, so that it cannot rot: it starts the servers it compares (ours
under gunicorn, nginx from the configuration it writes), loads them with wrk and prints the
ratios. What it measures is not checked: timings belong to the bench, never to a test."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "server.py"
if not BENCH.exists():
    pytest.skip("no bench/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries bench/", allow_module_level=True)


def _missing() -> list[str]:
    return [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]


@pytest.mark.skipif(bool(_missing()), reason=f"the bench needs {', '.join(_missing())}: "
                    "apt-get install -y wrk nginx util-linux")
def test_the_bench_compares_the_asgi_worker_with_nginx_in_one_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH), "--duration", "1", "--warmup", "0", "--rounds", "1",
         "--connections", "4", "--app", "hello world",
         "--server", "ours (ASGIWorker)", "--server", "nginx return 200"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # The table's columns: application (20 characters), server (24), req/s, p50, p99, ratio,
    # spread.
    rows = {line[21:45].strip(): line[45:].split()[3] for line in result.stdout.splitlines()
            if line.startswith("hello world ")}
    assert set(rows) == {"ours (ASGIWorker)", "nginx return 200"}, result.stdout
    assert rows["ours (ASGIWorker)"] == "1.00x"
    assert re.fullmatch(r"\d+\.\d\dx", rows["nginx return 200"]), result.stdout
