"""Off by default, and then not even imported: a fresh interpreter runs a request through an
edge and a worker, and a channel layer's send and receive, on a real Redis, and says whether
prometheus_client was imported. With metrics on, it was (the test can tell)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import unique_prefix

pytestmark = pytest.mark.processes  # a fresh interpreter per case (tests/tiers.py)

SCRIPT = r"""
import asyncio, sys
import channels_distributed.cli, channels_distributed.gunicorn, channels_distributed.metrics.hooks
from channels_distributed import RedisChannelLayer
from channels_distributed.distributor import create_path_distributor
from channels_distributed.worker import Node

URL, PREFIX, ON = sys.argv[1], sys.argv[2], sys.argv[3] == "on"


async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def ignore(event):
    pass


async def main():
    app = create_path_distributor(url=URL, prefix=PREFIX, routes={"/": "k"}, worker_timeout=20,
                                  **({"metrics_path": "/-/metrics"} if ON else {}))
    node = Node(hello, key="k", url=URL, prefix=PREFIX,
                **({"metrics_bind": "127.0.0.1:0"} if ON else {}))
    serving = asyncio.ensure_future(node.serve())
    lifespan = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    ended = asyncio.ensure_future(app({"type": "lifespan"}, lifespan.get, ignore))
    never, given, sent = asyncio.get_running_loop().create_future(), [], []

    async def receive():
        if not given:
            given.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        return await asyncio.shield(never)

    async def send(event):
        sent.append(event)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "headers": [], "client": None,
             "server": None}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    layer = RedisChannelLayer(hosts=[URL], prefix=PREFIX)
    await layer.send("jobs", {"type": "x"})
    assert (await layer.receive("jobs"))["type"] == "x"
    await layer.close()
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await ended
    node.stop()
    await serving


asyncio.run(main())
print("imported" if "prometheus_client" in sys.modules else "not imported")
"""


@pytest.mark.parametrize(("switch", "expected"), [("off", "not imported"), ("on", "imported")])
def test_prometheus_client_is_imported_only_when_metrics_are_on(redis_single: object,
                                                                switch: str,
                                                                expected: str) -> None:
    url = redis_single.servers[0].url  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, unique_prefix(), switch],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected, done.stdout
