"""The package's own plain-text answers (``responses.py``), as the ASGI events they send."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_distributed.responses import deny_websocket, send_plain


def _sent(call: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def send(event: dict[str, Any]) -> None:
        events.append(event)

    asyncio.run(call(send))
    return events


def test_send_plain_is_a_whole_plain_text_response() -> None:
    events = _sent(lambda send: send_plain(send, 503, b"busy\n", retry_after=1))
    assert events == [
        {"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"5"),
            (b"retry-after", b"1")]},
        {"type": "http.response.body", "body": b"busy\n"},
    ]
    events = _sent(lambda send: send_plain(send, 404, b"Not Found\n"))
    assert [name for name, _ in events[0]["headers"]] == [b"content-type", b"content-length"]


def test_deny_websocket_answers_with_a_response_where_the_server_can() -> None:
    scope = {"type": "websocket", "extensions": {"websocket.http.response": {}}}
    events = _sent(lambda send: deny_websocket(scope, send, 404, b"Not Found\n", 1008))
    assert [e["type"] for e in events] == ["websocket.http.response.start",
                                           "websocket.http.response.body"]
    assert events[0]["status"] == 404 and events[1]["body"] == b"Not Found\n"
    assert (b"content-type", b"text/plain; charset=utf-8") in events[0]["headers"]


def test_deny_websocket_closes_where_the_server_cannot() -> None:
    for scope in ({"type": "websocket"}, {"type": "websocket", "extensions": {}}):
        events = _sent(lambda send, s=scope: deny_websocket(s, send, 503, b"busy\n", 1013, 1))
        assert events == [{"type": "websocket.close", "code": 1013}]
