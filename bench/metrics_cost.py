"""What Prometheus metrics cost a forwarded request: off, on, and before they existed.

    .venv/bin/python bench/metrics_cost.py [--baseline REV] [--rounds 5]

Instructions per hello-world request, in the edge and in the worker, counted by callgrind
(``bench/callgrind_distributed.py``: one process under valgrind, its counterpart native, on a
private redis-server) for three builds:

* ``before``: the commit ``--baseline`` names (default: where this branch left ``main``,
  ``git merge-base HEAD main``), built compiled in a temporary folder (``pip wheel``, whose
  extensions are put beside its sources), with its own copy of the callgrind tool;
* ``off``: this checkout (``make dev`` builds it), metrics off (the default);
* ``on``: this checkout with the edge's ``metrics_path`` and the worker's ``metrics_bind`` set
  (``CD_BENCH_METRICS=1``); the tool then checks that the edge's page counted every request.

The rounds interleave the builds (before, off, on, before, ...), one callgrind round of each at a
time. Printed: each figure (the median of ``--rounds``), the spread of each build's rounds (the
largest minus the smallest, over the median: the noise), and the ratios off/before, on/off,
on/before. Instruction counts do not follow the machine's speed, but they drift with its load a
little: each process's once-a-second upkeep (its lease, its card, the metrics' flush) runs more
often per request when a loaded machine makes a run last longer. Needs valgrind (``apt-get
install -y valgrind``) and, to build the baseline, a C compiler and the build requirements
(``requirements/build.txt``) from the package index.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = Path("bench") / "callgrind_distributed.py"
ROLES = ("worker", "edge")
BUILDS = ("before", "off", "on")
_FIGURE = re.compile(r"^(worker|edge): ([\d.]+)k instructions per request", re.MULTILINE)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def default_baseline() -> str:
    here, base = git("rev-parse", "HEAD"), git("merge-base", "HEAD", "main")
    if here == base:
        raise SystemExit("HEAD is on main: name the commit to compare with, --baseline REV")
    return base


def build(rev: str, folder: Path) -> Path:
    """The sources of ``rev`` with their compiled extensions beside them, as ``make dev``
    leaves a checkout."""
    tree = folder / "src"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    wheels = folder / "wheel"
    print(f"building {rev} (about a minute)...", flush=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--wheel-dir", str(wheels), str(tree)], cwd=folder,
                           capture_output=True, text=True, env=dict(
                               os.environ,
                               PIP_CONSTRAINT=str(ROOT / "requirements" / "build.txt")))
    if built.returncode != 0:
        raise RuntimeError(f"building {rev} failed:\n{built.stdout}\n{built.stderr}")
    [wheel] = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive_of_wheel:
        for name in archive_of_wheel.namelist():
            if name.endswith(".so"):
                archive_of_wheel.extract(name, tree)
    return tree


def measure(tree: Path, small: int, large: int, metrics: bool) -> dict[str, float]:
    """Instructions per request (thousands) by role, one round of ``tree``'s own tool."""
    env = dict(os.environ, CD_BENCH_METRICS="1" if metrics else "0",
               PYTHONPATH=os.pathsep.join(filter(None, (str(tree),
                                                        os.environ.get("PYTHONPATH")))))
    out = subprocess.run([sys.executable, str(tree / TOOL), "--rounds", "1",
                          "--small", str(small), "--large", str(large)], cwd=tree, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{tree / TOOL} failed:\n{out.stdout}\n{out.stderr}")
    first = out.stdout.splitlines()[0]
    if not first.startswith(str(tree)) or " 0 of " in first:
        raise RuntimeError(f"measured another build than {tree}'s compiled one: {first}")
    return {role: float(figure) for role, figure in _FIGURE.findall(out.stdout)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=None,
                        help="the commit before metrics (default: git merge-base HEAD main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is missing: apt-get install -y valgrind", file=sys.stderr)
        return 2
    rev = args.baseline or default_baseline()
    described = git("log", "-1", "--format=%h %s", rev)[:70]
    folder = Path(tempfile.mkdtemp(prefix="cd-metrics-cost-"))
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in BUILDS}
    try:
        trees = {"before": build(rev, folder), "off": ROOT, "on": ROOT}
        for index in range(args.rounds):
            for name in BUILDS:
                rounds[name].append(measure(trees[name], args.small, args.large, name == "on"))
            print(f"round {index + 1} of {args.rounds}: " + ", ".join(
                f"{name} {r[-1]['worker']:.1f}k/{r[-1]['edge']:.1f}k"
                for name, r in rounds.items()), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(described, rounds)
    return 0


def report(described: str, rounds: dict[str, list[dict[str, float]]]) -> None:
    count = len(rounds["before"])
    print(f"before: {described}")
    print(f"instructions per request, thousands (medians of {count} interleaved callgrind "
          "rounds; the spread of each build's rounds in brackets)")
    print(f"{'role':<8}" + "".join(f"{name:>17}" for name in BUILDS)
          + f"{'off/before':>12}{'on/off':>9}{'on/before':>11}")
    for role in ROLES:
        medians = {}
        cells = []
        for name in BUILDS:
            values = [r[role] for r in rounds[name]]
            medians[name] = statistics.median(values)
            spread = (max(values) - min(values)) / medians[name]
            cells.append(f"{medians[name]:>9.1f} ({spread:>4.1%})")
        before, off, on = (medians[name] for name in BUILDS)
        print(f"{role:<8}" + "".join(f"{cell:>17}" for cell in cells)
              + f"{off / before:>12.3f}{on / off:>9.3f}{on / before:>11.3f}")


if __name__ == "__main__":
    sys.exit(main())
