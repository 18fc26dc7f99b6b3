"""Demo and test applications for the gunicorn ASGIWorker (``channels_distributed.gunicorn``).

``hello_world`` and ``sleepy_hello_world`` are the seed 003 examples (the second with its NameError
corrected). The rest exercise the server: ASGI 3, ASGI 2, streaming, echo, WebSocket, lifespan.
"""

import asyncio
import gc
import json
import os

# -- seed 003, example 1: a legacy consumer answering at once -------------------------------


def hello_world(message):
    content = b"<html><h1>Hello, world</h1></html>"
    response = {
        "status": 200,
        "headers": [
            [b"content-type", b"text/html"],
            [b"content-length", str(len(content)).encode("ascii")],
        ],
        "content": content,
    }
    message["reply_channel"].send(response)


# -- seed 003, example 2: answering after a non-blocking delay -------------------------------


def sleepy_hello(message):
    loop = message["channel_layer"].loop
    loop.create_task(sleepy_hello_world(message))


async def sleepy_hello_world(message):  # the seed named this parameter `response`: a NameError
    await asyncio.sleep(float(os.environ.get("SLEEPY_DELAY", "1")))
    content = b"<html><h1>Hello, world</h1></html>"
    response = {
        "status": 200,
        "headers": [
            [b"content-type", b"text/html"],
            [b"content-length", str(len(content)).encode("ascii")],
        ],
        "content": content,
    }
    message["reply_channel"].send(response)


# -- more legacy consumers ------------------------------------------------------------------


def legacy_never(message):
    """Never answers: the worker answers 503 after the legacy timeout."""


def legacy_stream(message):
    send = message.reply_channel.send
    send({"status": 200, "headers": [(b"content-type", b"text/plain")], "more_content": True})
    for part in (b"one ", b"two ", b"three"):
        send({"content": part, "more_content": True})
    send({"content": b""})


async def legacy_echo(message):
    """Async legacy consumer echoing the request as JSON, and a WebSocket echo."""
    if message.channel == "http.request":
        info = {
            "method": message["method"],
            "path": message["path"],
            "query_string": message["query_string"].decode(),
            "body": message["body"].decode("latin-1"),
            "http_version": message["http_version"],
            "scheme": message["scheme"],
            "client": message["client"],
        }
        await message.reply_channel.send({"status": 201, "content": json.dumps(info).encode()})
    elif message.channel == "websocket.connect":
        message.reply_channel.send({"accept": True})
    elif message.channel == "websocket.receive":
        if message["text"] == "close":
            message.reply_channel.send({"close": 4001})
        elif message["text"] is not None:
            message.reply_channel.send({"text": "echo:" + message["text"]})
        else:
            message.reply_channel.send({"bytes": message["bytes"]})


def legacy_named_scope(scope):
    """A legacy consumer whose parameter is named ``scope``: auto-detection calls it ASGI 2,
    so it needs ``CD_INTERFACE=legacy``."""
    scope["reply_channel"].send({"status": 200, "content": b"legacy by setting"})


# -- ASGI 3 / ASGI 2 ------------------------------------------------------------------------


async def asgi_hello(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world"})


class ASGI2Hello:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2:" + self.scope["path"].encode()})


async def _lifespan(receive, send):
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive):
    body = b""
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return None
        body += event.get("body", b"")
        if not event.get("more_body"):
            return body


async def echo(scope, receive, send):
    """Echoes the request as JSON (HTTP) or messages (WebSocket); special paths test the server."""
    if scope["type"] == "lifespan":
        return await _lifespan_recorded(scope, receive, send)
    if scope["type"] == "websocket":
        return await _websocket_echo(scope, receive, send)
    path = scope["path"]
    handler = _SPECIAL.get(path)
    if handler is not None:
        return await handler(scope, receive, send)
    body = await _read_body(receive)
    info = {
        "method": scope["method"],
        "path": path,
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "client": scope["client"],
        "server": scope["server"],
        "root_path": scope["root_path"],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body": (body or b"").decode("latin-1"),
        "state": sorted(scope.get("state", {})),
        "pid": os.getpid(),
    }
    payload = json.dumps(info).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _stream(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(3):
        await send({"type": "http.response.body", "body": b"chunk%d;" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _slow(scope, receive, send):
    delay = float(dict(scope["headers"]).get(b"x-delay", b"1"))
    _record("slow-start", str(os.getpid()))
    await asyncio.sleep(delay)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"slow done"})


async def _big(scope, receive, send):
    size = int(dict(scope["headers"]).get(b"x-size", b"10000000"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % size)],
        }
    )
    chunk = b"x" * 65536
    sent = 0
    while sent < size:
        part = chunk[: size - sent]
        sent += len(part)
        await send({"type": "http.response.body", "body": part, "more_body": sent < size})


async def _no_read(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"did not read"})


async def _status(scope, receive, send):
    status = int(scope["query_string"] or b"200")
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"" if status in (204, 304) else b"body"})


async def _short(scope, receive, send):
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    )
    await send({"type": "http.response.body", "body": b"short"})


_BAD_HEADERS = {
    b"value-lf": (b"x-a", b"ok\nx-injected: 1"),
    b"value-cr": (b"x-a", b"ok\rx-injected: 1"),
    b"value-nul": (b"x-a", b"ok\x00"),
    b"name-colon": (b"x-a: x-injected", b"1"),
    b"name-cr": (b"x-a\rx-injected", b"1"),
    b"not-bytes": ("x-a", "text"),
    b"clean": (b"x-a", b"1"),  # its name and value reappear in the bad ones above
}


async def _bad_header(scope, receive, send):
    """Sends the response header named by the query string: the server must refuse it
    (except ``clean``)."""
    header = _BAD_HEADERS[scope["query_string"]]
    await send({"type": "http.response.start", "status": 200, "headers": [header]})
    await send({"type": "http.response.body", "body": b"never"})


async def _raise(scope, receive, send):
    raise RuntimeError("boom")


async def _count_body(scope, receive, send):
    """Reads the body slowly, chunk by chunk, and reports how many bytes arrived."""
    total = 0
    while True:
        event = await receive()
        total += len(event.get("body", b""))
        await asyncio.sleep(0.001)
        if not event.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(total).encode()})


async def _gc(scope, receive, send):
    """The worker process's garbage collector settings."""
    payload = json.dumps({"threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload.encode()})


_SPECIAL = {
    "/stream": _stream,
    "/slow": _slow,
    "/big": _big,
    "/no-read": _no_read,
    "/status": _status,
    "/short": _short,
    "/raise": _raise,
    "/bad-header": _bad_header,
    "/count-body": _count_body,
    "/gc": _gc,
}


async def _websocket_echo(scope, receive, send):
    event = await receive()
    if scope["path"] == "/ws/reject":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/ws/deny":
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
        return
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            _record("ws-disconnect", str(event["code"]))
            _record("ws-disconnect-reason", repr(event.get("reason")))
            if scope["path"] == "/ws/linger":  # work to do on the disconnect (leave groups...)
                await asyncio.sleep(float(scope["query_string"].decode().partition("s=")[2]))
                _record("ws-linger-done", str(event["code"]))
            return
        text = event.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:])})
            continue
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"]})


def _record(name, value):
    directory = os.environ.get("RECORD_DIR")
    if directory:
        with open(os.path.join(directory, name), "a") as handle:
            handle.write(value + "\n")


async def _lifespan_recorded(scope, receive, send):
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            if os.environ.get("FAIL_STARTUP"):
                await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                return
            scope["state"]["ready"] = True
            _record("startup", str(os.getpid()))
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            _record("shutdown", str(os.getpid()))
            await send({"type": "lifespan.shutdown.complete"})
            return
