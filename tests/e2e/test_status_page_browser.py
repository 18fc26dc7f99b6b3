"""The live status page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which ``.ci/run`` installs) loads the page once from a real status server
over a real Redis, then reads it as it refreshes itself: a queue that fills, a worker killed, the
status server losing Redis, and the status server gone.

Marked ``browser``: nox runs these in its full session only. Where Chromium is missing they are
skipped with the fix, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Deployment
from helpers import wait_for
from status_server import TOKEN, queue_requests, status_server

pytestmark = [pytest.mark.browser, pytest.mark.processes]

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
INSTALL = "apt-get install chromium chromium-driver"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(name for name, found in (("chromium", browser),
                                                        ("chromedriver", driver)) if not found)
        message = f"headless Chromium is needed for the status page's tests: {missing} not " \
                  f"found on PATH. Install it: {INSTALL} (as root; .ci/run does)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A headless Chromium driven by selenium, with a profile in the test's folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    # Chromium's profile and temporary files in a short folder of /tmp: it exits at start when
    # the path of its profile's socket is longer than a Unix socket's (108 bytes), as it is in
    # nox's sessions, whose TMPDIR is deep in the cache folder.
    short = Path(tempfile.mkdtemp(prefix="cdc-", dir="/tmp"))
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--user-data-dir={short / 'profile'}",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    # The driver named, so that selenium never looks for (or downloads) one.
    service = Service(executable_path=driver, log_output=str(tmp_path / "chromedriver.log"),
                      env={**os.environ, "TMPDIR": str(short)})
    try:
        chrome = webdriver.Chrome(service=service, options=options)
        try:
            yield chrome
        finally:
            chrome.quit()
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _read(browser: object, script: str) -> object:
    return browser.execute_script(script)  # type: ignore[attr-defined]


def _queued(browser: object, route: str) -> int | None:
    text = _read(browser, f"var c = document.querySelector("
                          f"'tr[data-route=\"{route}\"] td[data-field=\"queued\"]');"
                          "return c && c.textContent;")
    return int(str(text)) if text else None


def _worker_pids(browser: object) -> list[int]:
    found = _read(browser, "return Array.from(document.querySelectorAll("
                           "'tr[data-worker] td[data-field=\"pid\"]'), c => c.textContent);")
    return [int(pid) for pid in found]  # type: ignore[attr-defined]


def _state(browser: object) -> str:
    return str(_read(browser, "return document.getElementById('state').dataset.state;"))


def _queue_points(browser: object, route: str) -> int:
    """Points drawn on the queue depth chart of ``route``."""
    d = _read(browser, f"var p = document.querySelector('[data-chart-route=\"{route}\"] "
                       "[data-chart=\"queue depth\"] path'); return p ? p.getAttribute('d') : '';")
    return str(d).count("L") + str(d).count("M") if d and d != "M0 0" else 0


def test_the_live_page_follows_a_filling_queue_and_a_dying_worker(
        deployment: Deployment, browser: object) -> None:
    worker = deployment.worker("w")
    queue_requests(deployment, "q", 2)
    url, server = status_server(deployment)
    browser.get(f"{url}/?token={TOKEN}")  # type: ignore[attr-defined]  # once: never reloaded

    wait_for(lambda: _queued(browser, "q") == 2, what="the page showing 2 queued on q")
    wait_for(lambda: worker.popen.pid in _worker_pids(browser), what="the worker on the page")
    assert _state(browser) == "live"

    queue_requests(deployment, "q", 3)  # the queue fills: the page, polling, shows it
    wait_for(lambda: _queued(browser, "q") == 5, what="the page showing 5 queued on q")
    wait_for(lambda: _queue_points(browser, "q") >= 2, what="the queue's history drawn")

    worker.popen.kill()  # its card expires with its lease
    wait_for(lambda: worker.popen.pid not in _worker_pids(browser),
             what="the killed worker gone from the page")

    deployment.redis.stop()  # type: ignore[union-attr]
    wait_for(lambda: _state(browser) == "error", what="the page saying collecting fails")
    assert "could not collect" in str(_read(
        browser, "return document.getElementById('error').textContent;"))
    assert _queued(browser, "q") == 5  # the last figures stay

    server.stop()
    wait_for(lambda: _state(browser) == "stale", what="the page saying the server is gone")
