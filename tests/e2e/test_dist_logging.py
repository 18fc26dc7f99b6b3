"""Log lines carry time and level: through gunicorn's error log under the ASGIWorker, through a
console handler under the console commands; the library itself adds no handler."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from deployment import ROOT, Deployment
from helpers import wait_for

# gunicorn's error log format: "[2026-01-01 12:00:00 +0000] [pid] [LEVEL] message".
GUNICORN_LINE = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[{level}\] {message}"
# The console commands' format: "2026-01-01 12:00:00,123 [pid] [LEVEL] logger: message".
CONSOLE_LINE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] \[{level}\] {logger}: {message}"


def _line(template: str, **parts: str) -> re.Pattern[str]:
    for name, value in parts.items():
        template = template.replace("{" + name + "}", value)
    return re.compile(template, re.MULTILINE)


def test_under_gunicorn_the_distributors_records_use_gunicorns_error_log(
        private: Deployment) -> None:
    url, edge = private.gunicorn_edge(worker_timeout=0.3)
    assert httpx.get(url + "/k/nobody/x", timeout=30).status_code == 503
    line = _line(GUNICORN_LINE, level="WARNING",
                 message=re.escape("no_worker on route key k-nobody: no worker is registered "
                                   "for it; /k/nobody/x waited 0.3 s"))
    wait_for(lambda: line.search(edge.output()), what=f"the warning in:\n{edge.output()}")


def test_the_worker_command_logs_with_time_and_level(private: Deployment) -> None:
    worker = private.worker("k-logs")
    line = _line(CONSOLE_LINE, level="INFO", logger="channels_distributed.worker.node",
                 message=r"worker \S+ serving route key\(s\) k-logs")
    assert line.search(worker.output()), worker.output()


def test_manage_py_runworker_logs_with_time_and_level(private: Deployment, tmp_path: Path) -> None:
    # A project without a LOGGING setting: Django's defaults put no handler on the root logger.
    (tmp_path / "no_logging_settings.py").write_text(
        "from testproject.settings import *  # noqa: F403\ndel LOGGING\n")
    proc = private.spawn([sys.executable, "testproject/manage.py", "runworker", "logs",
                          "--routes-only", "--prefix", private.prefix, "--settings",
                          "no_logging_settings"], "runworker",
                         PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    private.wait_registered("logs", proc)
    line = _line(CONSOLE_LINE, level="INFO", logger="channels_distributed.worker.node",
                 message=r"worker \S+ serving route key\(s\) logs")
    assert line.search(proc.output()), proc.output()


def test_importing_the_package_adds_no_log_handler() -> None:
    code = ("import logging, channels_distributed.distributor, channels_distributed.worker, "
            "channels_distributed.layer, channels_distributed.gunicorn, channels_distributed.cli; "
            "print(logging.getLogger().handlers, logging.getLogger('channels_distributed')"
            ".handlers)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[] []", out.stderr


def test_manage_py_runworker_logs_through_the_projects_logging(private: Deployment,
                                                              tmp_path: Path) -> None:
    # The project's LOGGING has a handler: the package's records go through it, once, in its
    # format (runworker adds no handler of its own).
    (tmp_path / "own_logging_settings.py").write_text(
        "from testproject.settings import *  # noqa: F403\n"
        "LOGGING['formatters']['console']['format'] = 'PROJECT %(name)s | %(message)s'\n")
    proc = private.spawn([sys.executable, "testproject/manage.py", "runworker", "logs2",
                          "--routes-only", "--settings", "own_logging_settings"], "runworker",
                         PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    private.wait_registered("logs2", proc)
    lines = [line for line in proc.output().splitlines() if "serving route key(s) logs2" in line]
    assert len(lines) == 1 and lines[0].startswith("PROJECT channels_distributed.worker.node | "), \
        proc.output()
