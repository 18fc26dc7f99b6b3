"""Helpers of the status server's tests (test_status_serve.py, test_status_page_browser.py): a
real ``channels-distributed status --serve`` (or ``manage.py distributed_status --serve``) of a
deployment, requests queued as an edge queues them, and authenticated GETs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
from deployment import MANAGE, Deployment, Proc
from helpers import wait_for

from channels_distributed.embedded import free_port
from channels_distributed.protocol.envelope import pack_connect
from channels_distributed.protocol.keys import DistKeys

SCRIPT = str(Path(sys.executable).with_name("channels-distributed"))
TOKEN = "a-token-for-the-tests-0123456789"


def queue_requests(deployment: Deployment, route: str, count: int) -> None:
    """``count`` connect requests on ``route``'s queue, as an edge queues them."""
    key = DistKeys(deployment.prefix).queue(route)
    now_ms = int(time.time() * 1000)
    for n in range(count):
        entry = pack_connect(f"c{n}", {"type": "http", "path": "/"}, "reply", "d-test",
                             now_ms + 60_000, True, None, False, queued_ms=now_ms)
        deployment.redis.command("RPUSH", key, entry)


def status_server(deployment: Deployment, *flags: str, token: str | None = TOKEN,
                  manage: bool = False) -> tuple[str, Proc]:
    """A status server of ``deployment`` on a free loopback port: its base URL once it
    answers, and the process."""
    port = free_port()
    given = ["--serve", f"127.0.0.1:{port}", *(["--token", token] if token else []), *flags]
    if manage:  # Redis from the project's settings (CD_REDIS_URL, CD_PREFIX)
        command = [*MANAGE, "distributed_status", *given]
    else:
        command = [SCRIPT, "status", "--url", deployment.redis.url, "--prefix",
                   deployment.prefix, *given]
    proc = deployment.spawn(command, "status")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _listening(proc, url), what=f"the status server at {url}")
    return url, proc


def _listening(proc: Proc, url: str) -> bool:
    if not proc.alive():
        raise AssertionError(f"the status server exited early:\n{proc.output()}")
    return "status page: " in proc.output()


def get(url: str, path: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url + path, headers=headers, timeout=5)


def route_of(url: str, key: str) -> dict[str, Any] | None:
    """Route key ``key`` in the status the server at ``url`` collected last (None: not in it)."""
    status = get(url, "/status.json").json()["status"] or {}
    found: dict[str, Any] | None = status.get("routes", {}).get(key)
    return found
