"""The distributor <-> worker protocol: keys, connect requests and event batches, sans-I/O."""

from __future__ import annotations

import msgpack
import pytest

from channels_distributed.exceptions import ProtocolError
from channels_distributed.protocol.envelope import (
    MIN_VERSION,
    VERSION,
    Connect,
    VersionMismatch,
    decode_connect,
    decode_events,
    encode_connect,
    encode_events,
    is_data,
    pack_connect,
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


def test_websockets_share_header_names_common_strings_and_edge_addresses() -> None:
    # An idle WebSocket keeps its request for as long as it stays open: what every request
    # repeats is kept once, not once per WebSocket.
    scope = {**SCOPE, "type": "websocket", "scheme": "wss"}
    connect = Connect(conn="c1", scope=scope, reply="asgi:{p:d-1}:in", origin="d-1",
                      deadline_ms=123, idempotent=False, body=None, more_body=False)
    first, second = (decode_connect(encode_connect(connect)) for _ in range(2))
    assert first.reply is second.reply and first.origin is second.origin
    for key in ("type", "http_version", "scheme"):
        assert first.scope[key] is second.scope[key]
    for (name, _), (other, _) in zip(first.scope["headers"], second.scope["headers"]):
        assert name is other
    assert first.scope["headers"] == [(b"host", b"example.com"), (b"x-a", b"\xff")]


def test_the_shared_strings_are_bounded() -> None:
    from channels_distributed.protocol import envelope

    for index in range(envelope._SHARED_LIMIT + 10):
        scope_from_wire({"type": "websocket", "path": "/",
                         "headers": [(b"x-%d" % index, b"")]})
    assert len(envelope._SHARED) <= envelope._SHARED_LIMIT
    long = b"x" * (envelope._SHARED_LONGEST + 1)
    scope_from_wire({"type": "websocket", "path": "/", "headers": [(long, b"")]})
    assert long not in envelope._SHARED


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
    assert decode_events(encode_events(events)) == (0, events)
    for bad in (b"\xc1", msgpack.packb({"type": "x"}), msgpack.packb([{"no": "type"}]),
                msgpack.packb([0, {"type": "x"}]), msgpack.packb([-3, {"type": "x"}]),
                msgpack.packb([2, 3, {"type": "x"}])):
        with pytest.raises(ProtocolError):
            decode_events(bad)


def test_numbered_entries_carry_their_number_and_unnumbered_ones_read_as_version_1() -> None:
    events = [{"type": "websocket.send", "text": "hi"}]
    assert decode_events(encode_events(events, 7)) == (7, events)
    # What a version 1 process sends (a plain list of events) reads as outside any stream.
    assert decode_events(msgpack.packb(events)) == (0, events)
    # ... and what a version 2 process sends a version 1 edge is such a plain list.
    assert msgpack.unpackb(encode_events(events)) == events


def test_a_worker_serves_older_edges_and_names_both_versions_to_newer_ones() -> None:
    old = Connect(conn="c1", scope=SCOPE, reply="r", origin="d-1", deadline_ms=1, version=1)
    assert decode_connect(encode_connect(old)).version == 1
    assert decode_connect(pack_connect("c", SCOPE, "r", "o", 1, False, None, False)).version \
        == VERSION == 2
    newer = pack_connect("c9", SCOPE, "r9", "o", 1, False, None, False, version=VERSION + 1)
    with pytest.raises(VersionMismatch) as refused:
        decode_connect(newer)
    assert refused.value.reply == "r9" and refused.value.conn == "c9"
    message = str(refused.value)
    assert f"version {VERSION + 1}" in message and f"versions {MIN_VERSION} to {VERSION}" in message
    assert "upgrade the workers before the edges" in message


def test_data_events_count_against_the_window() -> None:
    assert is_data({"type": "http.request"}) and is_data({"type": "websocket.send"})
    assert not is_data({"type": "http.response.start"}) and not is_data({"type": "cd.ack"})


def test_split_body_keeps_order_and_more_body() -> None:
    event = {"type": "http.response.body", "body": bytes(range(10)), "more_body": False}
    pieces = split_body(event, 4)
    assert [p["body"] for p in pieces] == [bytes(range(4)), bytes(range(4, 8)), bytes([8, 9])]
    assert [p["more_body"] for p in pieces] == [True, True, False]
    assert split_body(event, 10) == [event]
