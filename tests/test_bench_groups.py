"""bench/groups.py (group fan-out over 4 receiving processes) and bench/layer.py run end to end in
their tiny modes, so neither can rot. Timings are the benches' business, never asserted here."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if not (BENCH / "groups.py").exists():
    pytest.skip("no bench/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries bench/", allow_module_level=True)

pytestmark = pytest.mark.processes  # receiving processes, redis-server, nats-server

TIMEOUT = 180


def _peers_or_skip() -> None:
    missing = [name for name in ("channels_redis", "channels_nats")
               if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the peers' rows need the bench extra "
                    "(pip install -e '.[bench]')")
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        pytest.skip("no nats-server: channels-nats's row needs one (apt-get install nats-server)")


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _row(out: str, name: str) -> list[str]:
    """The figures of ``name``'s row in a round's table: p50, p99, deliveries/s."""
    found = re.search(rf"^\s+{re.escape(name)}\s+([\d.,-]+)\s+([\d.,-]+)\s+([\d.,-]+)", out,
                      re.MULTILINE)
    assert found is not None, out
    return list(found.groups())


def test_the_fan_out_bench_measures_ours() -> None:
    out = _bench(str(BENCH / "groups.py"), "--tiny", "--layers", "channels_distributed")
    assert "-" not in _row(out, "channels_distributed"), out  # every figure measured
    assert "lost" not in out and "Error" not in out, out


def test_the_fan_out_bench_measures_every_peer_and_prints_ratios() -> None:
    _peers_or_skip()
    out = _bench(str(BENCH / "groups.py"), "--tiny")
    for name in ("channels_distributed", "channels_redis pubsub", "channels_redis core",
                 "channels-nats"):
        assert "-" not in _row(out, name), out
    for peer in ("channels_redis pubsub", "channels_redis core", "channels-nats"):
        assert re.search(rf"ours / {re.escape(peer)}\s+fan-out [\d.]+x \[", out), out
    assert "goal fan-out >= 1.5x" in out and "goal fan-out >= 1.2x" in out


def test_the_layer_bench_has_the_nats_row() -> None:
    _peers_or_skip()
    out = _bench(str(BENCH / "layer.py"), "--tiny")
    assert re.search(r"^channels-nats\s+[\d,]+\s+[\d,]+\s+[\d,]+", out, re.MULTILINE), out
    assert "ratios against channels-nats" in out
    assert re.search(r"InMemoryChannelLayer / channels-nats: [\d.]+x / [\d.]+x", out), out
