"""The distributor <-> worker protocol: keys, connect requests and event batches, sans-I/O."""

from __future__ import annotations

import msgpack
import pytest

from channels_distributed.exceptions import ProtocolError
from channels_distributed.protocol.envelope import (
    Connect,
    decode_connect,
    decode_events,
    encode_connect,
    encode_events,
    is_data,
    scope_from_wire,
    split_body,
    wire_scope,
)
from channels_distributed.protocol.keys import DistKeys, key_slot

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "https", "path": "/api/x", "raw_path": b"/api/x", "query_string": b"a=1",
    "root_path": "/mount", "headers": [(b"host", b"example.com"), (b"x-a", b"\xff")],
    "client": ("10.0.0.1", 5555), "server": ("10.0.0.2", 443),
    "state": {"db": object()}, "extensions": {"http.response.trailers": {}},
}


def test_keys_of_one_route_and_one_process_share_a_slot() -> None:
    keys = DistKeys("asgi")
    assert keys.queue("ASGI-x") == "asgi:{rt:ASGI-x}:q"
    assert key_slot(keys.queue("k")) == key_slot(keys.processing("k", "w-1"))
    assert key_slot(keys.queue("k")) == key_slot(keys.registry("k")) == key_slot(
        keys.reap_lock("k"))
    assert key_slot(keys.inbox("d-1")) == key_slot(keys.lease("d-1"))
    assert keys.presence("d-1") == "asgi:presence:d-1"


def test_connect_round_trip_drops_state_and_extensions() -> None:
    connect = Connect(conn="c1", scope=SCOPE, reply="asgi:{p:d-1}:in", origin="d-1",
                      deadline_ms=123, idempotent=False, body=b"hi", more_body=True)
    back = decode_connect(encode_connect(connect))
    assert back.conn == "c1" and back.reply == connect.reply and back.origin == "d-1"
    assert back.deadline_ms == 123 and back.body == b"hi" and back.more_body is True
    assert "state" not in back.scope and "extensions" not in back.scope
    assert back.scope["headers"] == [(b"host", b"example.com"), (b"x-a", b"\xff")]
    assert back.scope["client"] == ("10.0.0.1", 5555)
    assert back.scope["server"] == ("10.0.0.2", 443)
    for key in ("method", "scheme", "path", "raw_path", "query_string", "root_path"):
        assert back.scope[key] == SCOPE[key]


def test_wire_scope_keeps_websocket_subprotocols() -> None:
    scope = {"type": "websocket", "path": "/ws", "subprotocols": ["a", "b"], "headers": []}
    assert scope_from_wire(wire_scope(scope))["subprotocols"] == ["a", "b"]


@pytest.mark.parametrize("raw", [
    b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"t": "other"}),
    msgpack.packb({"t": "connect", "v": 99}),
    msgpack.packb({"t": "connect", "v": 1, "c": "x", "r": "y", "o": "z", "d": "late",
                   "s": {"type": "http", "path": "/"}}),
    msgpack.packb({"t": "connect", "v": 1, "c": "x", "r": "y", "o": "z", "d": 1,
                   "s": {"type": "lifespan", "path": "/"}}),
])
def test_garbage_connects_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_connect(raw)


def test_event_batches() -> None:
    events = [{"type": "http.response.body", "body": b"\x00", "more_body": True}]
    assert decode_events(encode_events(events)) == events
    for bad in (b"\xc1", msgpack.packb({"type": "x"}), msgpack.packb([{"no": "type"}])):
        with pytest.raises(ProtocolError):
            decode_events(bad)


def test_data_events_count_against_the_window() -> None:
    assert is_data({"type": "http.request"}) and is_data({"type": "websocket.send"})
    assert not is_data({"type": "http.response.start"}) and not is_data({"type": "cd.ack"})


def test_split_body_keeps_order_and_more_body() -> None:
    event = {"type": "http.response.body", "body": bytes(range(10)), "more_body": False}
    pieces = split_body(event, 4)
    assert [p["body"] for p in pieces] == [bytes(range(4)), bytes(range(4, 8)), bytes([8, 9])]
    assert [p["more_body"] for p in pieces] == [True, True, False]
    assert split_body(event, 10) == [event]
