"""What the demo does with the running project (``run.py`` starts it): HTTP requests and a
chat, each line saying which worker served it (the project's responses carry the serving
process's pid in ``X-Served-By``; chat messages name the pids that sent and delivered them)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

__all__ = ["tour"]

_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def tour(base: str, password: str, names: dict[int, str]) -> list[str]:
    """Visit the project as a user would; one line per step."""
    import httpx

    def by(response: Any) -> str:
        pid = int(response.headers.get("x-served-by", "0"))
        return names.get(pid, f"pid {pid}")

    lines = []
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/")
        lines.append(f"GET  /                -> {page.status_code} page, served by {by(page)}")
        token = _token(page.text)
        refused = client.post("/", data={"name": "Ada"})
        lines.append(f"POST / without CSRF   -> {refused.status_code} (refused by CSRF)")
        posted = client.post("/", data={"name": "Ada", "csrfmiddlewaretoken": token})
        lines.append(f"POST / name=Ada       -> {posted.status_code} (CSRF token), served by "
                     f"{by(posted)}")
        lines.extend(_admin(client, password, by))
        lines.extend(_other_worker(client, by))
        lines.extend(_task(client, by, names))
    lines.extend(asyncio.run(_chat(base.replace("http", "ws", 1), names)))
    return lines


def _token(html: str) -> str:
    """The CSRF token of a page's form."""
    found = _TOKEN.search(html)
    if found is None:
        raise RuntimeError(f"no CSRF token in the page: {html[:200]!r}")
    return found.group(1)


def _admin(client: Any, password: str, by: Any) -> list[str]:
    form = client.get("/admin/login/")
    token = _token(form.text)
    login = client.post("/admin/login/?next=/admin/", data={
        "username": "admin", "password": password, "csrfmiddlewaretoken": token,
        "next": "/admin/"})
    admin = client.get("/admin/")
    ok = "Site administration" in admin.text
    # The admin's stylesheet: static files come from the workers too (WhiteNoise).
    css = client.get("/static/admin/css/base.css")
    kind = css.headers.get("content-type", "?").split(";")[0]
    return [f"POST /admin/login/    -> {login.status_code} to {login.headers.get('location')}, "
            f"served by {by(login)}",
            f"GET  /admin/          -> {admin.status_code} "
            f"{'the admin index' if ok else 'no admin index'}, served by {by(admin)}",
            f"GET  /static/admin/css/base.css -> {css.status_code} {kind}, {len(css.content)} "
            f"bytes, served by {by(css)}"]


def _other_worker(client: Any, by: Any) -> list[str]:
    """The session (name, signed-in user) written by one worker, read by the other."""
    room = client.get("/chat/lobby/")
    signed = "signed in as admin" in room.text
    who = client.get("/api/whoami/").json()
    return [f"GET  /chat/lobby/     -> {room.status_code} chat room page, served by "
            f"{by(room)}: {'signed in as admin' if signed else 'NOT signed in'} (same session)",
            f"GET  /api/whoami/     -> user {who['user']!r}, name {who['name']!r}"]


def _task(client: Any, by: Any, names: dict[int, str]) -> list[str]:
    queued = client.post("/api/tasks/", data={"text": "make thumbnails"},
                         headers={"X-CSRFToken": client.cookies["csrftoken"]})
    task = queued.json()
    deadline = time.monotonic() + 30
    while task["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
        task = client.get(f"/api/tasks/{task['id']}/").json()
    done = names.get(task.get("worker_pid") or 0, "nobody")
    return [f"POST /api/tasks/      -> {queued.status_code} queued by {by(queued)}; "
            f"{task['status']} by {done} (channel 'tasks'): {task.get('result')!r}"]


async def _chat(base: str, names: dict[int, str]) -> list[str]:
    """Two clients in one room on different workers: a message crosses over the group."""
    import websockets

    lines = ["WebSocket: alice on /ws/chat/lobby/ (route key chat), bob on "
             "/api/ws/chat/lobby/ (route key api), one chat room"]
    async with websockets.connect(base + "/ws/chat/lobby/", open_timeout=30) as alice, \
            websockets.connect(base + "/api/ws/chat/lobby/", open_timeout=30) as bob:
        for speaker, name, text in ((alice, "alice", "hello from alice"),
                                    (bob, "bob", "hi alice, bob here")):
            await speaker.send(json.dumps({"message": text}))
            for listener, who in ((alice, "alice"), (bob, "bob")):
                got = json.loads(await asyncio.wait_for(listener.recv(), 30))
                lines.append(f"{name} said {text!r} -> {who} got it (sent by "
                             f"{names.get(got['sent_by'], '?')}, delivered by "
                             f"{names.get(got['delivered_by'], '?')})")
    return lines
