"""A Starlette application whose responses never end by themselves: a server-sent events stream
(``StreamingResponse``) and a WebSocket endpoint that only sends.

Under ASGI spec 2.4 Starlette does not listen for the client's disconnect while it streams: it
relies on ``send()`` raising ``OSError`` once the client is gone. The tests of clients that leave
run it under gunicorn's ASGIWorker (``tests/server/test_client_gone.py``) and as a worker's
application behind the edge (``tests/e2e/test_dist_client_gone.py``). Each generator or endpoint
that stops appends ``<kind>-<tag>`` to the file ``stopped`` in ``RECORD_DIR`` (gunicorn) or
``CD_MARKER_DIR`` (the distributed deployment); each one that starts, to ``started``.
"""

import asyncio
import os

from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute

TICK = 0.05  # seconds between two messages of a stream


def _record(name, value):
    directory = os.environ.get("RECORD_DIR") or os.environ.get("CD_MARKER_DIR")
    if directory:
        with open(os.path.join(directory, name), "a") as handle:
            handle.write(value + "\n")


async def events(request):
    tag = request.query_params.get("tag", "sse")

    async def generate():
        _record("started", f"sse-{tag}")
        try:
            while True:
                yield "data: tick\n\n"
                await asyncio.sleep(TICK)
        finally:
            _record("stopped", f"sse-{tag}")

    return StreamingResponse(generate(), media_type="text/event-stream")


async def push(websocket):
    tag = websocket.query_params.get("tag", "ws")
    await websocket.accept()
    _record("started", f"ws-{tag}")
    try:
        while True:
            await websocket.send_text("tick")
            await asyncio.sleep(TICK)
    finally:
        _record("stopped", f"ws-{tag}")


# The paths under /k/<key>/ are the ones the test edge routes to the route key k-<key>.
app = Starlette(routes=[
    Route("/events", events),
    Route("/k/{key}/events", events),
    WebSocketRoute("/push", push),
    WebSocketRoute("/k/{key}/push", push),
])
