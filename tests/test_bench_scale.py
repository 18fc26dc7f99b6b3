"""bench/capacity.py's model and bench/scale.py: the model's arithmetic, the worked example of
docs/performance.rst being exactly the model's output for its documented inputs, and the scale
bench run end to end in its tiny mode so that it cannot rot (its figures are never asserted)."""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
if not (BENCH / "capacity.py").exists():
    pytest.skip("no bench/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries bench/", allow_module_level=True)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


capacity = _load("capacity")


def test_one_primary_carries_its_core_budget_over_the_redis_cost() -> None:
    plan = capacity.plan(capacity.Costs(redis_us=100, edge_us=200, worker_us=50), 10_000, 0.8)
    assert plan.per_primary == pytest.approx(8_000)  # 0.8 s of CPU a second / 100 us
    assert plan.primaries == 2  # 10,000 / 8,000 = 1.25, rounded up
    assert plan.per_edge_core == pytest.approx(4_000)
    assert plan.edge_cores == 3  # 2.5 rounded up
    assert plan.per_worker_core == pytest.approx(16_000)
    assert plan.worker_cores == 1


def test_a_load_that_fills_whole_cores_needs_no_extra_one() -> None:
    plan = capacity.plan(capacity.Costs(redis_us=50, edge_us=50, worker_us=50), 40_000, 1.0)
    assert (plan.primaries, plan.edge_cores, plan.worker_cores) == (2, 2, 2)


@pytest.mark.parametrize("costs", [(0, 1, 1), (1, -2, 1), (1, 1, math.nan), (1, 1, math.inf)])
def test_costs_are_positive_microseconds(costs: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="positive number of microseconds"):
        capacity.Costs(*costs)


@pytest.mark.parametrize(("target", "budget", "word"),
                         [(1000, 0, "budget"), (1000, 1.5, "budget"), (0, 0.8, "target")])
def test_a_target_and_a_budget_outside_their_range_are_refused(target: float, budget: float,
                                                               word: str) -> None:
    with pytest.raises(ValueError, match=word):
        capacity.plan(capacity.Costs(1, 1, 1), target, budget)


def test_one_route_is_capped_by_its_busiest_primary() -> None:
    assert capacity.route_ceiling(40.0, 0.8) == pytest.approx(20_000)
    with pytest.raises(ValueError, match="busiest_us"):
        capacity.route_ceiling(0.0)
    with pytest.raises(ValueError, match="budget"):
        capacity.route_ceiling(10.0, 0)


def test_the_docs_worked_example_is_the_models_output_for_its_inputs() -> None:
    page = (ROOT / "docs" / "performance.rst").read_text()
    section = page[page.index("Scale-out and capacity"):]
    for target in capacity.DOCUMENTED_TARGETS:
        assert capacity.example(target=target) in section, capacity.example(target=target)
    # The prose's figures are the model's for the same inputs.
    costs, budget = capacity.DOCUMENTED, capacity.DOCUMENTED_BUDGET
    small, large = (capacity.plan(costs, target, budget) for target in
                    capacity.DOCUMENTED_TARGETS)
    prose = " ".join(section.split())
    assert (f"({costs.redis_us}, {costs.edge_us} and {costs.worker_us} us per request) at "
            f"{budget:.0%} of one core") in prose
    assert (f"at {costs.redis_us} us per request one primary carries "
            f"{small.per_primary:,.0f} requests/s per primary at {budget:.0%} of one core") in prose
    assert small.primaries == 1
    assert f"{small.target:,.0f} requests/s fit on one primary" in prose
    assert (f"{large.target:,.0f} requests/s need {large.primaries} primaries, "
            f"{large.edge_cores} edge cores and {large.worker_cores} worker cores") in prose
    ratio = (costs.edge_us + costs.worker_us) / costs.redis_us
    assert f"for every core of Redis the edges and the workers use {ratio:.1f}" in prose
    # One route's ceilings come from the busiest primary of each hot-route row (in bold).
    for route in ("one queue", "spread over 3"):
        row = re.search(rf"^{route}\s.*\*\*([\d.]+) \(\d+%\)\*\*", section, re.MULTILINE)
        assert row is not None, route
        busiest = float(row.group(1))
        ceiling = capacity.route_ceiling(busiest, budget)
        assert f"{ceiling:,.0f}" in prose and f"(0.8 s / {busiest} us)" in prose, (route, ceiling)
    # The budget run the model's caveat cites is the one in the budget table above.
    for hop, total in (("redis-server", 35.8), ("edge (ASGIWorker + distributor)", 107.3),
                       ("worker", 83.2)):
        assert re.search(rf"^{re.escape(hop)}\s+[\d.]+\s+[\d.]+\s+{total}$", page, re.MULTILINE)
    assert "35.8 us in Redis, 107.3 in the edge and 83.2 in the worker" in prose


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("nginx") is None,
                    reason="the bench needs wrk and nginx: apt-get install -y wrk nginx")
def test_the_scale_bench_prints_every_row_and_the_model(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH / "scale.py"), "--tiny"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout
    number = r"[\d,.]+"
    for topology in ("1 server", "3 shards", "3-primary cluster"):
        # The layer row, then the distributed row: every figure measured, ratio vs 1 server.
        rows = re.findall(rf"^{re.escape(topology)}\s+{number}\s+{number}x\s+{number}\s+"
                          rf"{number}x", out, re.MULTILINE)
        assert len(rows) == 2, out
    # Every path serves (a loaded machine may time a few requests out, or answer 503).
    for failed, total in re.findall(r"\((\d+) non-2xx, \d+ socket errors of (\d+)\)", out):
        assert int(failed) < int(total) / 2, out
    assert re.search(r"^one queue\s+p0 .* busiest \d+%", out, re.MULTILINE), out
    assert re.search(r"^spread over 3\s+(p0 .* busiest \d+%|not measured: .*'spread')", out,
                     re.MULTILINE), out
    assert re.search(r"^Redis primaries\s+[\d.]+\s+[\d,]+\s+\d+$", out, re.MULTILINE), out
