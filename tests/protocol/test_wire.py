"""The hot-path encoding of connect requests keeps what applications rely on."""

from __future__ import annotations

import msgpack
import pytest

from channels_distributed.exceptions import ProtocolError
from channels_distributed.protocol.envelope import decode_connect, pack_connect

SCOPE = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x",
         "headers": [(b"host", b"a"), (bytearray(b"x-b"), b"2")], "client": ("1.2.3.4", 5),
         "server": ["5.6.7.8", 80], "state": {"db": object()}, "extensions": {"x": {}}}


def test_pack_connect_round_trip() -> None:
    back = decode_connect(pack_connect("c1", SCOPE, "inbox", "d-1", 99, True, b"", False))
    assert (back.conn, back.reply, back.origin, back.deadline_ms) == ("c1", "inbox", "d-1", 99)
    assert back.idempotent is True and back.body == b"" and back.more_body is False
    # Headers stay a list of tuples: middleware appends to it (Starlette's MutableHeaders).
    assert back.scope["headers"] == [(b"host", b"a"), (b"x-b", b"2")]
    assert isinstance(back.scope["headers"], list)
    assert back.scope["client"] == ("1.2.3.4", 5) and back.scope["server"] == ("5.6.7.8", 80)
    assert "state" not in back.scope and "extensions" not in back.scope


def test_websocket_subprotocols_stay_a_list() -> None:
    scope = {"type": "websocket", "path": "/ws", "subprotocols": ["a", "b"], "headers": []}
    back = decode_connect(pack_connect("c", scope, "i", "o", 1, False, None, False))
    assert back.scope["subprotocols"] == ["a", "b"] and back.body is None


def test_malformed_headers_are_a_protocol_error() -> None:
    raw = msgpack.packb({"t": "connect", "v": 1, "c": "x", "r": "y", "o": "z", "d": 1,
                         "s": {"type": "http", "path": "/", "headers": [[b"only-a-name"]]}})
    with pytest.raises(ProtocolError):
        decode_connect(raw)
