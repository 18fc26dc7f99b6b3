"""Seed 000 "Distributed ASGI", verbatim but for the import line and where Redis is."""

from __future__ import annotations

import sys

import httpx
from deployment import Deployment
from helpers import wait_for

from channels_distributed.embedded import free_port

# The top-level names come with the package's export table; until then the module path.
try:
    from channels_distributed import Node, create_path_distributor  # noqa: F401

    IMPORT = "from channels_distributed import {name}"
except (ImportError, AttributeError):
    IMPORT = "from channels_distributed.{module} import {name}"

SERVER = '''{import_line}

app = create_path_distributor(
    host="127.0.0.1",       # point to redis server
    port={port},
    db=0,
    password="abc123",
    routes={{
        "/api/([a-z-]+)": r"ASGI-\\1",
        "/worker/([0-9]+)": r"worker-queue-\\1",
        "/": "ALL-WEBSITE-TRAFFIC"
    }}
)
'''

WORKER = '''{import_line}


class ASGIApp:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({{
            "type": "http.response.start",
            "status": 200
        }})

        await send({{
            "type": "http.response.body",
            "body": b"Hello World!"
        }})


node = Node(
    host="127.0.0.1",
    port="{port}",
    password="abc123",
    cls=ASGIApp,
    key='ASGI-testing'
)

print(f"Starting worker")
node.run()
'''


def test_seed_example(deployment: Deployment) -> None:
    deployment.redis.command("CONFIG", "SET", "requirepass", "abc123")
    port = deployment.redis.port
    server = IMPORT.format(module="distributor", name="create_path_distributor")
    (deployment.tmp / "server.py").write_text(SERVER.format(import_line=server, port=port))
    worker = IMPORT.format(module="worker", name="Node")
    (deployment.tmp / "worker.py").write_text(WORKER.format(import_line=worker, port=port))

    node = deployment.spawn([sys.executable, str(deployment.tmp / "worker.py")], "seed-worker")
    http_port = free_port()
    edge = deployment.spawn([sys.executable, "-m", "uvicorn", "server:app", "--app-dir",
                          str(deployment.tmp), "--port", str(http_port),
                          "--log-level", "warning"], "seed-edge")
    url = f"http://127.0.0.1:{http_port}"

    def served() -> httpx.Response | None:
        if not (node.alive() and edge.alive()):
            raise AssertionError(node.output() + edge.output())
        try:
            response = httpx.get(url + "/api/testing", timeout=10)
        except httpx.HTTPError:
            return None
        return response if response.status_code == 200 else None

    response = wait_for(served, what="the seed worker to answer")
    assert isinstance(response, httpx.Response)
    assert response.content == b"Hello World!"
    assert "Starting worker" in node.output()
    # re.search: the seed's "/test/api/test2" row; a route may match anywhere in the path.
    assert httpx.get(url + "/test/api/testing", timeout=10).content == b"Hello World!"
    node.stop()
    assert node.popen.returncode == 0
