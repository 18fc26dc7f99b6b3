"""What compiling each module gains: instructions per request (or message) with it from its
sources, against the whole compiled build, counted by callgrind in the same run.

    .venv/bin/python bench/compile_gains.py [--modules server.http,transport.writer]

For each module of ``compiled.COMPILED`` (or those named), the callgrind harness of each workload
that runs it is run with ``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=<module>`` (that module alone from its
Python sources, with the compiled modules that cimport it; see compiled.py) and, just before,
without: ``bench/callgrind_server.py --scenario get`` for ``server.*``;
``bench/callgrind_distributed.py --rounds 1`` in the roles (edge, worker) that run the module, for
the transport, protocol, distributor and worker modules; and ``bench/callgrind_layer.py
--scenario send`` for the modules the channel layer runs. Printed per module and workload: both
figures and the gain, the share of the instructions that compiling it saves. docs/development.rst
keeps the figures; a module whose gain is under 5% in every workload is not compiled. To measure
a module that is not compiled, add it to ``COMPILED`` (with a ``.pxd`` declaring its classes),
rebuild (``make dev``) and name it here. Each harness run starts Python under valgrind: about 5
minutes per distributed module and role, 2 per server module, 1 for the layer.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels_distributed.compiled import COMPILED, ENV  # noqa: E402

# Which processes of a forwarded request run a module (the edge's relay, the worker's connection).
EDGE_ONLY = {"distributor.edge", "distributor.relay"}
WORKER_ONLY = {"worker.connection"}
# The modules the channel layer runs (RedisChannelLayer's send and receive).
LAYER = {"protocol.codec", "protocol.keys", "protocol.packing", "transport.reader",
         "transport.resp", "transport.scripts", "transport.writer"}


def _short(module: str) -> str:
    return module.removeprefix("channels_distributed.")


def _run(args: list[str], sources: str) -> str:
    env = dict(os.environ, **{ENV: sources})
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=7200)
    if result.returncode != 0:
        raise RuntimeError(f"{args} with {ENV}={sources!r} failed:\n{result.stderr}")
    return result.stdout


def figures(module: str, sources: str) -> dict[str, float]:
    """Instructions per request (or message), by workload, with ``sources`` from their sources."""
    if module.startswith("server."):
        out = _run(["bench/callgrind_server.py", "--scenario", "get", "--small", "500",
                    "--large", "2500"], sources)
        return {"server GET": float(re.search(r"get\s+\S+\s+([\d.]+)k", out)[1]) * 1000}
    role = "edge" if module in EDGE_ONLY else "worker" if module in WORKER_ONLY else "both"
    out = _run(["bench/callgrind_distributed.py", "--role", role, "--rounds", "1"], sources)
    found = {match[1]: float(match[2]) * 1000
             for match in re.finditer(r"^(worker|edge): ([\d.]+)k", out, re.MULTILINE)}
    if module in LAYER:
        out = _run(["bench/callgrind_layer.py", "--scenario", "send", "--rounds", "1"], sources)
        found["layer send"] = float(re.search(r"^send: ([\d.]+)k", out, re.MULTILINE)[1]) * 1000
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", default=",".join(_short(m) for m in COMPILED))
    args = parser.parse_args()
    for module in args.modules.split(","):
        module = _short(module.strip())
        # The whole build just before, in the same roles: a slower (loaded) run does more of
        # the periodic work per request, so a baseline taken long before would skew the gain.
        compiled = figures(module, "")
        source = figures(module, module)
        for role, cost in source.items():
            base = compiled[role]
            print(f"{module:24} {role:10} compiled {base / 1000:7.1f}k  from source "
                  f"{cost / 1000:7.1f}k  gain {(cost - base) / cost * 100:5.1f}%", flush=True)

if __name__ == "__main__":
    main()
