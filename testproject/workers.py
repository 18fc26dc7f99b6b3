"""Worker applications of the tests and the demo (run with ``channels-distributed worker``).

``app`` dispatches on the last path segment: ``hello``, ``scope``, ``upload``, ``download``,
``stream``, ``slow``, ``boom-before``, ``boom-after``, ``wait-disconnect``, ``mark``, ``count``;
WebSocket paths get ``websocket``. ``CD_MARKER_DIR`` is where apps leave files that tests look
for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]


def _mark(name: str, text: str = "") -> None:
    # Written aside, then renamed: a test that sees the file sees all of it.
    folder = os.environ.get("CD_MARKER_DIR")
    if folder:
        aside = pathlib.Path(folder, f".{name}.{os.getpid()}")
        aside.write_text(text)
        aside.replace(pathlib.Path(folder, name))


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}


async def _respond(send: Any, body: bytes, status: int = 200,
                   content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"x-worker-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> tuple[int, str, bool]:
    """The body's size and SHA-256, and whether it arrived whole (not ended by a disconnect)."""
    digest, size = hashlib.sha256(), 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return size, digest.hexdigest(), False
        digest.update(event.get("body", b""))
        size += len(event.get("body", b""))
        if not event.get("more_body"):
            return size, digest.hexdigest(), True


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    await _respond(send, f"Hello from worker {os.getpid()}\n".encode())


async def scope_view(scope: Scope, receive: Any, send: Any) -> None:
    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    await receive()
    await _respond(send, json.dumps(plain(scope)).encode(), content_type=b"application/json")


async def upload(scope: Scope, receive: Any, send: Any) -> None:
    tag = _query(scope).get("tag")
    if tag is not None:
        _mark(f"upload-started-{tag}")
    size, digest, whole = await _read_body(receive)
    if tag is not None:
        _mark(f"upload-read-{tag}", f"{size} {'whole' if whole else 'disconnected'}")
    await _respond(send, json.dumps({"size": size, "sha256": digest}).encode())


async def download(scope: Scope, receive: Any, send: Any) -> None:
    size = int(float(_query(scope).get("mb", "1")) * 1024 * 1024)
    block = bytes(range(256)) * 4096  # 1 MiB
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size).encode())]})
    if _query(scope).get("one") == "1":  # one send of the whole body: the worker splits it
        whole = (block * (size // len(block) + 1))[:size]
        await send({"type": "http.response.body", "body": whole})
        return
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": sent < size})


async def stream(scope: Scope, receive: Any, send: Any) -> None:
    """``n`` parts (5), ``pause`` seconds apart (0.01), then ``end``."""
    query = _query(scope)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(int(query.get("n", "5"))):
        await send({"type": "http.response.body", "body": b"part%d\n" % i, "more_body": True})
        await asyncio.sleep(float(query.get("pause", "0.01")))
    await send({"type": "http.response.body", "body": b"end\n"})


async def slow(scope: Scope, receive: Any, send: Any) -> None:
    if "tag" in _query(scope):
        _mark(f"slow-started-{_query(scope)['tag']}", str(os.getpid()))
    await asyncio.sleep(float(_query(scope).get("s", "1")))
    await _respond(send, b"slow done\n")


async def boom_before(scope: Scope, receive: Any, send: Any) -> None:
    raise RuntimeError("boom before the response (expected by the tests)")


async def boom_after(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("boom after the response started (expected by the tests)")


async def wait_disconnect(scope: Scope, receive: Any, send: Any) -> None:
    tag = _query(scope).get("tag", "x")
    _mark(f"started-{tag}")
    while (await receive())["type"] != "http.disconnect":
        pass
    _mark(f"disconnected-{tag}")


async def mark(scope: Scope, receive: Any, send: Any) -> None:
    tag = _query(scope).get("tag", "x")
    _mark(f"ran-{tag}", str(os.getpid()))
    await _respond(send, b"marked\n")


async def count(scope: Scope, receive: Any, send: Any) -> None:
    """Append ``tag pid`` to the marker file ``runs`` as it starts (every run counted, whichever
    worker), then answer after ``s`` seconds (0)."""
    query = _query(scope)
    folder = os.environ.get("CD_MARKER_DIR")
    if folder:
        # One write to a file opened for appending: lines of several workers never mix.
        fd = os.open(pathlib.Path(folder, "runs"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{query.get('tag', 'x')}:{os.getpid()}\n".encode())
        finally:
            os.close(fd)
    await asyncio.sleep(float(query.get("s", "0")))
    await _respond(send, b"counted\n")


async def websocket(scope: Scope, receive: Any, send: Any) -> None:
    tag = _query(scope).get("tag", "ws")
    await receive()  # websocket.connect
    if "reject" in scope["path"]:
        await send({"type": "websocket.close", "code": 1000})
        return
    if "http-response" in scope["path"]:  # a mistake: an HTTP response to a WebSocket
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"not a websocket answer"})
        return
    accept: dict[str, Any] = {"type": "websocket.accept",
                              "headers": [(b"x-worker-pid", str(os.getpid()).encode())]}
    if scope.get("subprotocols"):
        accept["subprotocol"] = scope["subprotocols"][-1]
    await send(accept)
    _mark(f"ws-open-{tag}")
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            _mark(f"ws-reason-{tag}", repr(event.get("reason")))
            _mark(f"ws-disconnected-{tag}", str(event.get("code")))
            return
        text = event.get("text")
        if text is not None and text.startswith("close:"):
            _, code, reason = text.split(":", 2)
            await send({"type": "websocket.close", "code": int(code), "reason": reason})
            after = await receive()  # what an ASGI server answers once the app has closed
            _mark(f"ws-closed-{tag}", f"{after.get('code')} {after.get('reason')!r}")
            return
        if text is not None:
            await send({"type": "websocket.send", "text": f"echo:{text}"})
        else:
            await send({"type": "websocket.send", "bytes": b"echo:" + event["bytes"]})


VIEWS = {"hello": hello, "scope": scope_view, "upload": upload, "download": download,
         "stream": stream, "slow": slow, "boom-before": boom_before, "boom-after": boom_after,
         "wait-disconnect": wait_disconnect, "mark": mark, "count": count}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            await send({"type": event["type"] + ".complete"})
            if event["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    view = VIEWS.get(scope["path"].rstrip("/").rsplit("/", 1)[-1])
    if view is None:
        await _respond(send, b"no such test view\n", status=404)
        return
    await view(scope, receive, send)


class ASGIApp:
    """The seed's ASGI 2 class-style application."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"Hello World!"})


def legacy_consumer(message: Any) -> None:
    """A Channels 1 consumer: answers through the reply channel from sync code."""
    message.reply_channel.send({"status": 200, "headers": [(b"content-type", b"text/plain")],
                                "content": b"legacy " + message["path"].encode()})
