"""WebSocket over the ASGIWorker: echo, close codes, rejection, limits, keepalive, legacy apps."""

from __future__ import annotations

import base64
import os
import select
import socket
import zlib

import pytest
from gunicorn_helpers import Reader, connect, request
from helpers import wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from channels_distributed.conf.server import ServerConfig, extra_settings
from channels_distributed.exceptions import ConfigurationError


def _url(server, path="/ws/echo"):
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.mark.core
def test_echo_text_and_bytes(echo_server):
    with ws_connect(_url(echo_server), open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"
        large = "x" * 200_000
        ws.send(large)
        assert ws.recv(timeout=10) == large


def test_fragmented_message_is_reassembled(echo_server):
    with ws_connect(_url(echo_server), open_timeout=10) as ws:
        ws.send(iter(["frag", "mented"]))
        assert ws.recv(timeout=10) == "fragmented"


def test_subprotocol_negotiation(echo_server):
    with ws_connect(_url(echo_server), subprotocols=["chat.v2", "chat.v1"], open_timeout=10) as ws:
        assert ws.subprotocol == "chat.v2"


@pytest.mark.core
def test_server_close_code_reaches_client(echo_server):
    with ws_connect(_url(echo_server), open_timeout=10) as ws:
        ws.send("close:4000")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


@pytest.mark.core
def test_client_close_code_and_reason_reach_application(gunicorn):
    server = gunicorn("testproject.apps_server:echo")
    with ws_connect(_url(server), open_timeout=10) as ws:
        ws.send("ping")
        ws.recv(timeout=10)
        ws.close(code=4321, reason="client-leaving")
    wait_for(lambda: server.recorded("ws-disconnect-reason"), what="websocket.disconnect")
    assert server.recorded("ws-disconnect") == ["4321"]
    assert server.recorded("ws-disconnect-reason") == ["'client-leaving'"]


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    data = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + data  # payloads < 126 bytes


def test_close_between_fragments_is_a_normal_close(gunicorn):
    # RFC 6455 section 5.4: control frames may come between the fragments of a message. A Close
    # there ends the connection normally: the server echoes 1000 and drops the unfinished
    # message (Autobahn case 7.1.5; websockets alone answers 1002, a protocol error).
    server = gunicorn("testproject.apps_server:echo")
    sock, buffered = _raw_handshake(server.port)
    with sock:
        first = _masked(0x1, b"fragment1")
        sock.sendall(bytes([first[0] & 0x7F]) + first[1:])  # FIN clear: more fragments follow
        sock.sendall(_masked(0x8, (1000).to_bytes(2, "big")))
        sock.sendall(_masked(0x0, b"fragment2"))  # after the Close: discarded
        opcode, payload, _ = _read_frame(sock, buffered)
        assert (opcode, payload[:2]) == (0x8, (1000).to_bytes(2, "big"))
        # Then the server closes. "fragment2", sent after the client's own Close (which RFC 6455
        # forbids), may still be unread in the server's socket then: the kernel answers such a
        # close with a reset instead of a FIN. Either ends the connection.
        try:
            rest = sock.recv(4096)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
    wait_for(lambda: server.recorded("ws-disconnect"), what="websocket.disconnect")
    assert server.recorded("ws-disconnect") == ["1000"]


def test_a_stream_mixing_fast_frames_fragments_and_a_ping_is_answered_in_order(echo_server):
    """Whole messages take the fast path (server/framing.py), fragments and control frames the
    websockets protocol object: sent in one write, the messages still reach the application,
    and their echoes the client, in the order they were sent; the ping gets its pong."""
    sock, buffered = _raw_handshake(echo_server.port)
    fragment = _masked(0x1, b"frag")
    stream = b"".join([
        _masked(0x1, b"one"),
        _masked(0x2, b"two"),
        bytes([fragment[0] & 0x7F]) + fragment[1:],  # FIN clear: more fragments follow
        _masked(0x9, b"ping!"),
        _masked(0x0, b"mented"),
        _masked(0x1, b"three"),
    ])
    with sock:
        sock.sendall(stream)
        frames = []
        while len(frames) < 5:
            opcode, payload, buffered = _read_frame(sock, buffered)
            frames.append((opcode, payload))
        sock.sendall(_masked(0x8, (1000).to_bytes(2, "big")))
    assert [f for f in frames if f[0] == 0xA] == [(0xA, b"ping!")]
    assert [f for f in frames if f[0] != 0xA] == [
        (0x1, b"one"), (0x2, b"two"), (0x1, b"fragmented"), (0x1, b"three")]


def _read_frame(
    sock: socket.socket, buffered: bytes, whole_byte: bool = False
) -> tuple[int, bytes, bytes]:
    """One unmasked server frame (payload < 126 bytes): (opcode, payload, bytes after it); with
    ``whole_byte``, the frame's first byte (FIN and RSV bits too) instead of the opcode."""
    data = buffered
    while len(data) < 2 or len(data) < 2 + data[1]:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError(f"connection closed after {data!r}")
        data += chunk
    end = 2 + data[1]
    return data[0] if whole_byte else data[0] & 0x0F, data[2:end], data[end:]


def test_server_close_waits_for_the_client_close(gunicorn):
    # RFC 6455 section 7.1.1: after its own Close frame the server waits for the client's Close,
    # then closes TCP first. It used to close TCP right after its Close frame.
    server = gunicorn("testproject.apps_server:echo")
    sock, buffered = _raw_handshake(server.port)
    with sock:
        sock.sendall(_masked(0x1, b"close:4000"))  # the application closes with 4000
        opcode, payload, rest = _read_frame(sock, buffered)
        assert (opcode, payload[:2]) == (0x8, (4000).to_bytes(2, "big"))
        assert not rest
        ready = select.select([sock], [], [], 0.5)[0]
        assert not ready, f"the server closed the connection before the client's Close: {ready}"
        sock.sendall(_masked(0x8, (4000).to_bytes(2, "big") + b"done"))
        assert sock.recv(4096) == b""  # the server closes TCP once it has the client's Close
    wait_for(lambda: server.recorded("ws-disconnect-reason"), what="websocket.disconnect")
    assert server.recorded("ws-disconnect") == ["4000"]
    assert server.recorded("ws-disconnect-reason") == ["'done'"]


def test_rejected_handshake_is_403(echo_server):
    with pytest.raises(InvalidStatus) as rejected:
        ws_connect(_url(echo_server, "/ws/reject"), open_timeout=10)
    assert rejected.value.response.status_code == 403


def test_denial_response_extension(echo_server):
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(_url(echo_server, "/ws/deny"), open_timeout=10)
    assert denied.value.response.status_code == 401
    assert denied.value.response.body == b"nope"


def test_invalid_handshake_is_400(echo_server):
    response, closed = request(
        echo_server.port,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",  # no Sec-WebSocket-Key
    )
    assert response.status == 400
    assert closed


def test_max_message_size_closes_1009(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "--websocket-max-message-size", "1000")
    with ws_connect(_url(server), open_timeout=10, max_size=None) as ws:
        ws.send("a" * 900)
        assert ws.recv(timeout=10) == "a" * 900
        ws.send("a" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _raw_handshake(
    port: int, path: bytes = b"/ws/echo", extra: bytes = b""
) -> tuple[socket.socket, bytes]:
    sock = connect(port)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
        + key
        + b"\r\n"
        + extra
        + b"\r\n"
    )
    reader = Reader(sock)
    response = reader.read(head=True)
    assert response.status == 101
    return sock, bytes(reader.buffer)


def test_keepalive_ping_then_close_1011(gunicorn):
    server = gunicorn(
        "testproject.apps_server:echo",
        env={"CD_WS_PING_INTERVAL": "0.5", "CD_WS_PING_TIMEOUT": "0.5"},
    )
    sock, buffered = _raw_handshake(server.port)
    with sock:
        data = buffered
        while True:  # a raw client that never answers pings
            chunk = sock.recv(4096)
            data += chunk
            if not chunk:
                break
    assert data[0] == 0x89  # first frame from the server: a ping
    close_at = data.index(b"\x88")
    assert int.from_bytes(data[close_at + 2 : close_at + 4], "big") == 1011


def test_legacy_consumer_websocket(gunicorn):
    server = gunicorn("testproject.apps_server:legacy_echo")
    with ws_connect(_url(server, "/anything"), open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo:hi"
        ws.send(b"raw")
        assert ws.recv(timeout=10) == b"raw"
        ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


def test_channels_consumer_from_testproject(gunicorn):
    server = gunicorn("channels_distributed.demo.asgi:application")
    with ws_connect(_url(server, "/ws/echo/"), open_timeout=10) as ws:
        ws.send("through channels")
        assert ws.recv(timeout=10) == "through channels"


@pytest.mark.parametrize("path", ["/ws/start-then-raise", "/ws/start-then-return"])
def test_unfinished_denial_response_is_500_and_close(edge_server, path):
    # The application sent websocket.http.response.start, then raised or returned.
    key = base64.b64encode(os.urandom(16))
    response, closed = request(
        edge_server.port,
        b"GET %b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: %b\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), key),
    )
    assert response.status == 500
    assert response.header("connection") == "close"
    assert closed


# -- permessage-deflate ------------------------------------------------------------------------

# Varied enough that zlib's window matters, repetitive enough to compress.
DEFLATED = " ".join(f"item-{i % 997}:{i * 7919 % 104729}" for i in range(20_000))


@pytest.mark.core
def test_permessage_deflate_negotiates_a_small_window(echo_server):
    # zlib's default window (15 bits) cost a compressed connection 124 KiB, uvicorn's 12 bits
    # 69 KiB (bench/ws_memory.py). The websockets client offers what browsers offer,
    # "permessage-deflate; client_max_window_bits": the server chooses both windows.
    with ws_connect(_url(echo_server), open_timeout=10) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        )
        for _ in range(2):  # the second message reuses both sides' compression context
            ws.send(DEFLATED)
            assert ws.recv(timeout=10) == DEFLATED
    # On the wire: the echo of a plain frame comes back compressed (RSV1), within a 12-bit window.
    sock, buffered = _raw_handshake(
        echo_server.port, extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    )
    with sock:
        sock.sendall(_masked(0x1, b"abc" * 40))
        first, payload, _ = _read_frame(sock, buffered, whole_byte=True)
        assert first == 0x80 | 0x40 | 0x1  # FIN, RSV1 (compressed), text
        assert len(payload) < 40
        inflate = zlib.decompressobj(wbits=-12)
        assert inflate.decompress(payload + b"\x00\x00\xff\xff") == b"abc" * 40


@pytest.mark.parametrize("bits", [9, 15])
def test_deflate_window_setting(gunicorn, bits):
    server = gunicorn("testproject.apps_server:echo", env={"CD_WS_DEFLATE_WINDOW_BITS": str(bits)})
    with ws_connect(_url(server), open_timeout=10) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        )
        ws.send(DEFLATED)
        assert ws.recv(timeout=10) == DEFLATED
    off = gunicorn("testproject.apps_server:echo", env={"CD_WS_PER_MESSAGE_DEFLATE": "false"})
    with ws_connect(_url(off), open_timeout=10) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


@pytest.mark.core
@pytest.mark.parametrize("value", ["8", "16", "big"])
def test_bad_deflate_window_names_the_setting(value):
    with pytest.raises(ConfigurationError, match=r"^ws_deflate_window_bits: "):
        ServerConfig(**extra_settings({}, {"CD_WS_DEFLATE_WINDOW_BITS": value}))
