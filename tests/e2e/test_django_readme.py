"""README's Django quick start, followed as written: ``startproject``, the settings and the edge
module it shows, ``manage.py check``, ``migrate`` and ``collectstatic``, then its gunicorn edge
and ``runworker`` commands (on a test Redis and a free port), pages served through them by
Django and the admin's stylesheet by the workers' WhiteNoise; and its line for a project that
lists ``channels`` already, in such a project."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import unique_prefix, wait_for

from channels_distributed.embedded import free_port

README = Path(__file__).resolve().parents[2] / "README.rst"


def block_after(heading: str) -> str:
    """The literal block of the quick start that follows the line containing ``heading``."""
    text = README.read_text().split("Django quick start\n", 1)[1]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if heading in line and line.endswith("::"))
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= 3:
            break
        body.append(line)
    indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
    return "\n".join(line[indent:] for line in body).strip() + "\n"


def user_env() -> dict[str, str]:
    """The environment of a user's shell: not the suite's DJANGO_SETTINGS_MODULE."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return dict(env, PYTHONUNBUFFERED="1")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=user_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def project(redis_single: Any, tmp_path: Path) -> Path:
    run([sys.executable, "-m", "django", "startproject", "myproject", str(tmp_path)], tmp_path)
    settings = tmp_path / "myproject" / "settings.py"
    url = redis_single.servers[0].url
    settings.write_text(settings.read_text() + "\n" + block_after("myproject/settings.py") +
                        f"\n# The test's Redis, not localhost:6379\nCHANNEL_LAYERS['default']"
                        f"['CONFIG'] = {{'hosts': [{url!r}], 'prefix': {unique_prefix()!r}}}\n")
    (tmp_path / "myproject" / "edge.py").write_text(block_after("myproject/edge.py"))
    return tmp_path


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        assert proc.wait(30) == 0  # each drains and exits cleanly on SIGTERM
    for log in tmp_path.glob("*.log"):  # nothing went wrong on the way
        text = log.read_text()
        assert "Traceback" not in text, text
        # What the README says WhiteNoise costs under ASGI: Django's warning, once a process.
        assert text.count("StreamingHttpResponse must consume synchronous iterators") <= 1, text


def test_the_quick_start_runs_as_written(project: Path, tmp_path: Path,
                                         processes: list[subprocess.Popen[bytes]]) -> None:
    commands = [shlex.split(line) for line in block_after("as many per key").splitlines()]
    once = [c for c in commands if c[:2] == ["python", "manage.py"] and c[2] != "runworker"]
    assert [c[:3] for c in once] == [["python", "manage.py", "check"],
                                     ["python", "manage.py", "migrate"],
                                     ["python", "manage.py", "collectstatic"]]
    assert "System check identified no issues" in run(
        [sys.executable, *once[0][1:]], project).stdout
    for command in once[1:]:
        run([sys.executable, *command[1:]], project)
    collected = project / "staticfiles" / "admin" / "css" / "base.css"  # STATIC_ROOT
    assert collected.is_file()
    port = free_port()
    for command in commands[len(once):]:
        if command[0] == "gunicorn":
            command = [sys.executable, "-m", *command]
            command[command.index("-b") + 1] = f"127.0.0.1:{port}"
        else:
            command = [sys.executable, *command[1:]]
        with (tmp_path / f"{command[2]}-{len(processes)}.log").open("wb") as log:
            processes.append(subprocess.Popen(command, cwd=project, stdout=log,
                                              stderr=subprocess.STDOUT, env=user_env()))
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> httpx.Response | None:
        try:
            return httpx.get(base + path, timeout=10)
        except httpx.HTTPError:
            return None

    # /admin/ is the "site" key's worker; /api/ the "api" key's (Django's own 404 page).
    login = wait_for(lambda: (lambda r: r if r is not None and r.status_code == 200 else None)(
        get("/admin/login/")), what="the admin login page through the edge")
    assert "Django administration" in login.text  # type: ignore[union-attr]
    missing = get("/api/nothing/")
    assert missing is not None and missing.status_code == 404
    assert re.search("Page not found|Not Found", missing.text)
    assert "myproject.urls" in missing.text  # DEBUG's 404 page: Django answered, not the edge
    # The admin's styles: a path like any other, routed to "site", answered by WhiteNoise there.
    css = get("/static/admin/css/base.css")
    assert css is not None and css.status_code == 200, css
    assert css.headers["content-type"].startswith("text/css")
    assert css.content == collected.read_bytes()
    assert '/static/admin/css/base.css"' in login.text  # type: ignore[union-attr]


def test_the_line_for_a_project_that_lists_channels_already(redis_single: Any,
                                                             tmp_path: Path) -> None:
    """README step 2's ``INSTALLED_APPS +=`` line fails where "channels" is listed already (a
    Channels project): its line for that case, in a project made by ``startproject`` with
    Channels set up, gives a project that checks clean and whose ``runworker`` is ours."""
    run([sys.executable, "-m", "django", "startproject", "chatsite", str(tmp_path)], tmp_path)
    settings = tmp_path / "chatsite" / "settings.py"
    channels_project = settings.read_text() + (
        '\nINSTALLED_APPS += ["channels"]\nASGI_APPLICATION = "chatsite.asgi.application"\n')
    url = redis_single.servers[0].url
    ours = block_after("myproject/settings.py").replace("myproject", "chatsite") + (
        f"\nCHANNEL_LAYERS['default']['CONFIG'] = {{'hosts': [{url!r}]}}\n")
    added = 'INSTALLED_APPS += ["channels_distributed", "channels"]\n'
    assert added in ours
    settings.write_text(channels_project + ours)  # as step 2 says for a new project
    refused = subprocess.run([sys.executable, "manage.py", "check"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, env=user_env())
    assert refused.returncode != 0
    assert "Application labels aren't unique, duplicates: channels" in refused.stderr
    line = block_after("just before ``\"channels\"``")
    assert line == ('INSTALLED_APPS.insert(INSTALLED_APPS.index("channels"), '
                    '"channels_distributed")\n')
    settings.write_text(channels_project + ours.replace(added, line))
    assert "System check identified no issues" in run(
        [sys.executable, "manage.py", "check"], tmp_path).stdout
    shown = run([sys.executable, "manage.py", "shell", "-c",
                 "from django.conf import settings; "
                 "from django.core.management import get_commands; "
                 "print(get_commands()['runworker'], list(settings.INSTALLED_APPS)[-2:])"],
                tmp_path).stdout
    assert shown.splitlines()[-1] == "channels_distributed ['channels_distributed', 'channels']"
