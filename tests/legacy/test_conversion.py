"""ASGI 1 <-> ASGI 3 conversions (sans-I/O): messages, response and WebSocket state machines."""

from __future__ import annotations

import pytest

from channels_distributed.exceptions import ProtocolError
from channels_distributed.legacy import conversion

SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "scheme": "https",
    "path": "/a b",
    "query_string": b"x=1",
    "root_path": "/api",
    "headers": [(b"host", b"h")],
    "client": ("10.0.0.1", 5000),
    "server": ("10.0.0.2", 443),
}



def test_http_request_message_has_asgi1_keys():
    message = conversion.http_request_message(SCOPE, b"body", "http.response!1")
    assert message == {
        "reply_channel": "http.response!1",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/a b",
        "query_string": b"x=1",
        "root_path": "/api",
        "headers": [[b"host", b"h"]],
        "body": b"body",
        "client": ["10.0.0.1", 5000],
        "server": ["10.0.0.2", 443],
    }


def test_http_request_message_refuses_other_scopes():
    with pytest.raises(ProtocolError, match="expected an 'http' scope"):
        conversion.http_request_message({"type": "websocket"}, b"", "r")


def test_single_response():
    response = conversion.LegacyHttpResponse()
    events = response.feed({"status": 200, "headers": [[b"a", b"b"], ["c", "d"]], "content": b"x"})
    assert events == [
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b"), (b"c", b"d")]},
        {"type": "http.response.body", "body": b"x", "more_body": False},
    ]
    assert response.done


@pytest.mark.parametrize("headers", [
    ((b"a", b"b"), (b"c", b"d")),  # a tuple of tuples
    (pair for pair in [[b"a", b"b"], [b"c", "d"]]),  # any iterable of pairs
])
def test_response_headers_in_other_shapes(headers):
    start = conversion.LegacyHttpResponse().feed({"status": 200, "headers": headers})[0]
    assert start["headers"] == [(b"a", b"b"), (b"c", b"d")]


def test_bytes_like_header_names_are_refused():
    with pytest.raises(ProtocolError, match="header name must be bytes"):
        conversion.LegacyHttpResponse().feed({"status": 200, "headers": [[bytearray(b"a"), b"b"]]})


def test_streamed_response_then_nothing_more():
    response = conversion.LegacyHttpResponse()
    assert len(response.feed({"status": 200, "more_content": True})) == 2
    assert response.started and not response.done
    assert response.feed({"content": b"more"}) == [
        {"type": "http.response.body", "body": b"more", "more_body": False}
    ]
    with pytest.raises(ProtocolError, match="already complete"):
        response.feed({"content": b"late"})


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"content": b"x"}, "integer 'status'"),
        ({"status": "200"}, "integer 'status'"),
        ({"status": True}, "integer 'status'"),
        ({"status": 200, "content": "text"}, "must be bytes"),
        ({"status": 200, "headers": {"a": "b"}}, "list of \\[name, value\\]"),
        ({"status": 200, "headers": [[b"a"]]}, "not a \\[name, value\\] pair"),
        ({"status": 200, "headers": [[b"a", 1]]}, "header value must be bytes"),
        ({"status": 200, "headers": [["é€", b"x"]]}, "not latin-1"),
    ],
)
def test_invalid_responses(message, error):
    with pytest.raises(ProtocolError, match=error):
        conversion.LegacyHttpResponse().feed(message)


def test_websocket_messages():
    scope = {**SCOPE, "type": "websocket", "scheme": "wss"}
    connect = conversion.websocket_connect_message(scope, "ws!1")
    assert connect["order"] == 0 and connect["scheme"] == "wss" and connect["path"] == "/a b"
    received = conversion.websocket_receive_message(scope, {"text": "hi"}, "ws!1", 3)
    assert received == {
        "reply_channel": "ws!1",
        "path": "/a b",
        "order": 3,
        "text": "hi",
        "bytes": None,
    }
    gone = conversion.websocket_disconnect_message(scope, 1001, "ws!1", 4)
    assert gone == {"reply_channel": "ws!1", "path": "/a b", "code": 1001, "order": 4}


def test_websocket_accept_send_close():
    replies = conversion.LegacyWebSocketReplies()
    assert replies.feed({"accept": True}) == [{"type": "websocket.accept"}]
    assert replies.feed({"text": "a", "close": 4000}) == [
        {"type": "websocket.send", "text": "a"},
        {"type": "websocket.close", "code": 4000},
    ]
    assert replies.closed
    with pytest.raises(ProtocolError, match="already closed"):
        replies.feed({"text": "late"})


def test_websocket_send_implies_accept_and_reject():
    replies = conversion.LegacyWebSocketReplies()
    assert replies.feed({"bytes": b"x"}) == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "bytes": b"x"},
    ]
    rejected = conversion.LegacyWebSocketReplies()
    assert rejected.feed({"accept": False}) == [{"type": "websocket.close", "code": 1000}]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"text": "a", "bytes": b"b"}, "not both"),
        ({"text": b"a"}, "'text' must be str"),
        ({"bytes": "a"}, "'bytes' must be bytes"),
        ({"close": "now"}, "'close' must be True or an integer"),
        ({"status": 200}, "unknown WebSocket reply keys"),
    ],
)
def test_invalid_websocket_replies(message, error):
    with pytest.raises(ProtocolError, match=error):
        conversion.LegacyWebSocketReplies().feed(message)
