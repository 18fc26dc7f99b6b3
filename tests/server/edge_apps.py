"""ASGI applications for server edge cases the test project does not cover (``--pythonpath``)."""

from __future__ import annotations

import asyncio
import os


def _record(name: str, value: str) -> None:
    with open(os.path.join(os.environ["RECORD_DIR"], name), "a") as handle:
        handle.write(value + "\n")


async def _late_reader(scope, receive, send):
    """Leaves the body unread for X-Delay seconds, then reads it all and answers its size."""
    _record("late-reader", "started")
    await asyncio.sleep(float(dict(scope["headers"]).get(b"x-delay", b"0")))
    size, more = 0, True
    while more:
        event = await receive()
        if event["type"] == "http.disconnect":
            _record("late-reader", "disconnect")
            return
        size += len(event.get("body", b""))
        more = event.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"%d" % size})


async def _reader(scope, receive, send):
    """Reads the body; records the disconnect if that is what arrives instead."""
    more = True
    while more:
        event = await receive()
        if event["type"] == "http.disconnect":
            _record("reader", "disconnect")
            return
        more = event.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


async def _late_accept(scope, receive, send):
    """Accepts after X seconds (?delay=X), when its client already left; records what it is told
    next, and what sending then does."""
    await receive()  # websocket.connect
    await asyncio.sleep(float(scope["query_string"].decode().partition("delay=")[2] or "0.3"))
    await send({"type": "websocket.accept"})
    event = await receive()
    _record("late-accept", f"{event['type']}:{event.get('code')}")
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        _record("late-accept", f"OSError:{exc.__class__.__name__}")


async def _websocket(scope, receive, send):
    if scope["path"] == "/ws/late-accept":
        await _late_accept(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    if scope["path"] == "/ws/start-then-raise":
        raise RuntimeError("boom after websocket.http.response.start")


async def _no_response(scope, receive, send):
    """Returns without answering while the client is still there: an application error."""


_HANDLERS = {"/late-reader": _late_reader, "/no-response": _no_response}


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "http":
        await _HANDLERS.get(scope["path"], _reader)(scope, receive, send)


def legacy_late(message):
    """A legacy consumer that answers after ?delay= seconds, later than CD_LEGACY_TIMEOUT."""
    delay = float(message["query_string"].decode().partition("delay=")[2] or "1")

    async def later():
        await asyncio.sleep(delay)
        message["reply_channel"].send({"status": 200, "content": b"late"})
        _record("legacy-late", "replied")

    message["channel_layer"].loop.create_task(later())
