"""The test project run distributed, as a Django user runs theirs: ``manage.py prepare`` migrates
a SQLite file every process shares, the edge serves ``get_edge_application()`` (gunicorn with
the ASGIWorker), and two ``manage.py runworker`` processes serve it: A the chat and background
tasks (``chat tasks``), B the API and the rest of the site (``api site``). One deployment per
module; each response and chat message names the worker process that made it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from deployment import DJANGO_EDGE, MANAGE, Deployment, Proc, answers
from helpers import wait_for

from channels_distributed.embedded import free_port

PASSWORD = "not-a-secret-pw"


@dataclass
class Project:
    url: str
    chat: Proc  # worker A: runworker chat tasks
    api: Proc  # worker B: runworker api site
    deployment: Deployment
    db: dict[str, str]  # the environment naming the shared database

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def pid(self, worker: Proc) -> int:
        return worker.popen.pid


def served_by(response: httpx.Response) -> int:
    return int(response.headers["x-served-by"])


@pytest.fixture(scope="module")
def project(redis_single: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    deployment = Deployment(redis_single.servers[0], tmp_path_factory.mktemp("django"))
    db = deployment.django_database(PASSWORD)
    chat = deployment.spawn([*MANAGE, "runworker", "chat", "tasks"], "worker-a", **db)
    api = deployment.spawn([*MANAGE, "runworker", "api", "site"], "worker-b", **db)
    deployment.wait_registered("chat", chat)
    deployment.wait_registered("site", api)
    url, _ = deployment.django_edge(**db)
    yield Project(url, chat, api, deployment, db)
    deployment.close()


def _token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def test_a_page_and_a_form_checked_by_csrf(project: Project) -> None:
    with project.client() as client:
        page = client.get("/")
        assert page.status_code == 200 and served_by(page) == project.pid(project.api)
        assert client.post("/", data={"name": "Ada"}).status_code == 403  # no token
        posted = client.post("/", data={"name": "Ada", "csrfmiddlewaretoken": _token(page.text)})
        assert posted.status_code == 302
        assert "Hello, Ada" in client.get("/").text


def test_admin_login_and_the_session_on_the_other_worker(project: Project) -> None:
    with project.client() as client:
        form = client.get("/admin/login/")
        login = client.post("/admin/login/?next=/admin/", data={
            "username": "admin", "password": PASSWORD, "next": "/admin/",
            "csrfmiddlewaretoken": _token(form.text)})
        assert (login.status_code, login.headers["location"]) == (302, "/admin/")
        admin = client.get("/admin/")
        assert "Site administration" in admin.text
        assert served_by(admin) == project.pid(project.api)
        # Written by worker B in the shared database, read by worker A.
        room = client.get("/chat/lobby/")
        assert served_by(room) == project.pid(project.chat)
        assert "signed in as admin" in room.text


async def _recv(socket: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), 20))  # type: ignore[no-any-return]


async def _two_clients(project: Project, room: str, then: Any = None) -> list[dict[str, Any]]:
    """alice on /ws/chat/ (route key chat: worker A), bob on /api/ws/chat/ (api: worker B)."""
    import websockets

    base = project.url.replace("http", "ws", 1)
    async with websockets.connect(f"{base}/ws/chat/{room}/", open_timeout=20) as alice, \
            websockets.connect(f"{base}/api/ws/chat/{room}/", open_timeout=20) as bob:
        if then is None:
            await alice.send(json.dumps({"message": "hello bob"}))
        else:
            await asyncio.to_thread(then)
        return [await _recv(alice), await _recv(bob)]


@pytest.mark.core
def test_chat_clients_on_different_workers(project: Project) -> None:
    a, b = project.pid(project.chat), project.pid(project.api)
    at_alice, at_bob = asyncio.run(_two_clients(project, "lobby"))
    assert at_alice == {"message": "hello bob", "user": "anonymous", "sent_by": a,
                        "delivered_by": a}
    assert at_bob == {"message": "hello bob", "user": "anonymous", "sent_by": a,
                      "delivered_by": b}


def test_a_view_broadcasts_to_both_workers(project: Project) -> None:
    a, b = project.pid(project.chat), project.pid(project.api)

    def broadcast() -> None:
        with project.client() as client:
            token = client.get("/api/csrf/").json()["token"]
            sent = client.post("/api/broadcast/news/", data={"message": "extra"},
                               headers={"X-CSRFToken": token})
            assert sent.status_code == 200 and served_by(sent) == b

    at_alice, at_bob = asyncio.run(_two_clients(project, "news", broadcast))
    said = {"message": "extra", "user": "broadcast", "sent_by": b}
    assert at_alice == {**said, "delivered_by": a} and at_bob == {**said, "delivered_by": b}


@pytest.mark.core  # at the floors too: asgiref 3.7's StatelessServer has no arun()
def test_a_background_task_runs_on_the_worker_serving_its_channel(project: Project) -> None:
    with project.client() as client:
        token = client.get("/api/csrf/").json()["token"]
        queued = client.post("/api/tasks/", data={"text": "resize"},
                             headers={"X-CSRFToken": token})
        assert queued.status_code == 202 and served_by(queued) == project.pid(project.api)
        path = f"/api/tasks/{queued.json()['id']}/"
        task = wait_for(lambda: (lambda t: t if t["status"] == "done" else None)(
            client.get(path).json()), what="the task to be done")
    assert task == {"id": queued.json()["id"], "status": "done", "result": "RESIZE",
                    "worker_pid": project.pid(project.chat),
                    "queued_by_pid": project.pid(project.api)}


def test_a_streaming_download_and_an_upload(project: Project) -> None:
    with project.client() as client:
        with client.stream("GET", "/api/download/?mb=4") as download:
            body = b"".join(download.iter_bytes())
        assert download.headers["content-length"] == str(4 * 1024 * 1024)
        assert body == (bytes(range(256)) * 256) * 64
        token = client.get("/api/csrf/").json()["token"]
        data = bytes(range(256)) * 8192  # 2 MiB
        upload = client.post("/api/upload/", files={"file": ("data.bin", data)},
                             headers={"X-CSRFToken": token})
    assert upload.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                             "pid": project.pid(project.api)}


@pytest.mark.parametrize("server", ["uvicorn", "daphne", "granian"])
def test_the_edge_module_under_other_asgi_servers(project: Project, server: str) -> None:
    port = free_port()
    command = {"uvicorn": ["-m", "uvicorn", "--port", str(port), "--log-level", "warning"],
               "daphne": ["-m", "daphne", "-p", str(port)],
               "granian": ["-m", "granian", "--interface", "asgi", "--workers", "1",
                           "--host", "127.0.0.1", "--port", str(port)]}[server]
    edge = project.deployment.spawn([sys.executable, *command, DJANGO_EDGE], server, **project.db)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}", edge, "/hello/", (200,), 10),
                 what=f"{server}'s edge")
        page = httpx.get(f"http://127.0.0.1:{port}/page/", timeout=30)
        assert page.status_code == 200 and served_by(page) == project.pid(project.api)
    finally:
        edge.stop()


def test_sigterm_drains_and_exits_cleanly(project: Project) -> None:
    # Last in the module: it stops both workers. A download in flight when worker B gets
    # SIGTERM is finished before it exits (the relay's window holds it back until read).
    size = 8 * 1024 * 1024
    with project.client() as client, client.stream("GET", "/api/download/?mb=8") as download:
        chunks = download.iter_bytes()
        received = len(next(chunks))
        project.api.signal(signal.SIGTERM)
        wait_for(lambda: "finishing 1 connection(s)" in project.api.output(),
                 what="worker B to start draining")
        received += sum(len(chunk) for chunk in chunks)
    assert received == size
    for worker in (project.api, project.chat):
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
        assert re.search(r"worker \S+ stopped after \d+ connection", worker.output())
