"""Imported at start by every Python process that ``bench/sources.py`` runs (this folder is first
on their ``PYTHONPATH``): the modules named in ``CD_BENCH_SOURCES`` are imported from their
sources. Only the bench tool puts this folder on a path."""

import importlib.util
import os
from pathlib import Path


def _use_sources() -> None:
    modules = [name for name in os.environ.get("CD_BENCH_SOURCES", "").split(",") if name]
    if not modules:
        return
    path = Path(__file__).resolve().parents[1] / "sources.py"
    try:
        spec = importlib.util.spec_from_file_location("_cd_bench_sources", path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python file")
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        tool.use_sources(modules)
    except Exception as exc:
        # site.py would print an error and go on with the compiled build: a wrong measurement.
        raise SystemExit(f"{path}: cannot run {', '.join(modules)} from sources: {exc}") from exc


_use_sources()
