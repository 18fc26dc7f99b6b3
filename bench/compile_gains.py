"""What compiling a set of modules gains, in instructions per request, counted by callgrind.

Instructions per request (or message) with the set from its sources, against the whole compiled
build, both counted in the same run.

    .venv/bin/python bench/compile_gains.py [--set forwarding.hub,forwarding.peer] [--set ...]

Each ``--set`` (compiled modules, comma-separated, with or without the ``channels_distributed.``
prefix) is measured on its own; without one, each module of ``compiled.COMPILED`` is a set of its
own. A set runs from its Python sources, the rest compiled, through ``bench/sources.py`` (which
adds the compiled modules that cimport one of the set: they cannot load without it compiled).
The callgrind harness of each workload that runs a module of the set is run with the set from
its sources and, just before, with the whole build compiled: ``bench/callgrind_server.py
--scenario get`` for ``server.*``, and ``bench/callgrind_ws.py --scenario text`` (a WebSocket
message) for ``server.framing``; ``bench/callgrind_distributed.py --rounds 1`` in the roles
(edge, worker) that run the modules, for the transport, protocol, distributor and worker
modules; and ``bench/callgrind_layer.py --scenario send`` for the modules the channel layer runs.
Printed per set and workload: both figures and the gain, the share of the instructions that
compiling the set saves. Single modules' gains decide what is compiled (docs/development.rst
keeps the figures; a module whose gain is under 5% in every workload is not compiled); a set
shows what several modules gain together, which can be more than their single gains add up to.
To measure modules that are not compiled, add them to ``COMPILED`` (each with a ``.pxd``
declaring its classes), rebuild (``make dev``) and name them here. Each harness run starts Python
under valgrind: about 5 minutes per distributed set and role, 2 per server set, 1 for the layer.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import sources

ROOT = Path(__file__).resolve().parents[1]

# Which processes of a forwarded request run a module (the edge's relay, the worker's connection).
EDGE_ONLY = {"distributor.edge", "distributor.relay"}
WORKER_ONLY = {"worker.connection"}
# The modules only a WebSocket message runs (bench/callgrind_ws.py measures them).
WEBSOCKET = {"server.framing"}
# The modules the channel layer runs (RedisChannelLayer's send and receive).
LAYER = {"protocol.codec", "protocol.keys", "protocol.packing", "transport.reader",
         "transport.resp", "transport.scripts", "transport.writer"}


def _short(module: str) -> str:
    return module.removeprefix(f"{sources.PACKAGE}.")


def _run(args: list[str], modules: frozenset[str]) -> str:
    result = sources.run(modules, [sys.executable, *args], cwd=ROOT, capture_output=True,
                         timeout=7200)
    if result.returncode != 0:
        shown = ",".join(sorted(_short(m) for m in modules)) or "none"
        raise RuntimeError(f"{args} with {shown} from sources failed:\n{result.stderr}")
    return result.stdout


def _thousands(pattern: str, out: str) -> float:
    found = re.search(pattern, out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no figure ({pattern}) in:\n{out}")
    return float(found[1]) * 1000


def _role(shorts: set[str]) -> str | None:
    """The processes of a forwarded request to measure for these modules, if any."""
    distributed = {m for m in shorts if not m.startswith("server.")}
    if not distributed:
        return None
    if distributed <= EDGE_ONLY:
        return "edge"
    if distributed <= WORKER_ONLY:
        return "worker"
    return "both"


def figures(chosen: frozenset[str], modules: frozenset[str]) -> dict[str, float]:
    """Instructions per request (or message), by workload that runs ``chosen``, with
    ``modules`` from their sources (none: the whole build compiled)."""
    shorts = {_short(m) for m in chosen}
    found: dict[str, float] = {}
    if shorts & WEBSOCKET:
        out = _run(["bench/callgrind_ws.py", "--scenario", "text", "--small", "1000",
                    "--large", "6000"], modules)
        found["websocket echo"] = _thousands(r"^text\s+\S+\s+([\d.]+)k", out)
    if any(m.startswith("server.") and m not in WEBSOCKET for m in shorts):
        out = _run(["bench/callgrind_server.py", "--scenario", "get", "--small", "500",
                    "--large", "2500"], modules)
        found["server GET"] = _thousands(r"get\s+\S+\s+([\d.]+)k", out)
    role = _role(shorts)
    if role is not None:
        out = _run(["bench/callgrind_distributed.py", "--role", role, "--rounds", "1"], modules)
        found.update((match[1], float(match[2]) * 1000)
                     for match in re.finditer(r"^(worker|edge): ([\d.]+)k", out, re.MULTILINE))
    if shorts & LAYER:
        out = _run(["bench/callgrind_layer.py", "--scenario", "send", "--rounds", "1"], modules)
        found["layer send"] = _thousands(r"^send: ([\d.]+)k", out)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", dest="sets", metavar="MODULES",
                        help="compiled modules measured together, comma-separated (repeatable)")
    args = parser.parse_args()
    compiled = sources.compiled_list()
    sets = args.sets or [_short(module) for module in compiled]
    for named in sets:
        modules = sources.resolve(named.split(","), compiled)
        label = "+".join(sorted(_short(m) for m in modules))
        # The whole build just before, in the same workloads: a slower (loaded) run does more of
        # the periodic work per request, so a baseline taken long before would skew the gain.
        base = figures(modules, frozenset())
        source = figures(modules, modules)
        for workload, cost in source.items():
            print(f"{label:24} {workload:10} compiled {base[workload] / 1000:7.1f}k  from source "
                  f"{cost / 1000:7.1f}k  gain {(cost - base[workload]) / cost * 100:5.1f}%",
                  flush=True)


if __name__ == "__main__":
    main()
