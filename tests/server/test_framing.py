"""The WebSocket fast path in memory: which frames it reads, which it leaves to ``websockets``, and
that a stream mixing both is delivered in order (``channels_distributed.server.framing``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode

from channels_distributed.conf.server import ServerConfig
from channels_distributed.server.base import Connection
from channels_distributed.server.context import ServerContext
from channels_distributed.server.flow import FlowControl
from channels_distributed.server.framing import (
    NEED_MORE,
    Framing,
    frame_end,
    server_frame,
    unmask,
)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused = False
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closing = True


def _framing(max_size: int = 0) -> tuple[Framing, Connection]:
    """A Framing on a connection whose transport records what is written."""
    loop = asyncio.new_event_loop()  # only read: ServerContext asks it the time
    loop.close()
    context = ServerContext(None, ServerConfig(), loop, logging.getLogger("test-framing"))
    conn = Connection(context, owner=None)  # type: ignore[arg-type]
    conn.transport = FakeTransport()  # type: ignore[assignment]
    conn.flow = FlowControl(conn.transport)
    framing = Framing(conn, context, b"")
    framing.events.clear()  # websocket.connect: the session's business
    framing.opened = True
    framing.max_size = max_size
    return framing, conn


def client(opcode: Opcode, data: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    frame = Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])
    return bytes([frame[0] | 0x40]) + frame[1:] if rsv1 else frame  # websockets refuses RSV1


def _received(framing: Framing) -> list[Any]:
    return [e.get("text", e.get("bytes")) for e in framing.events]


def _sent(conn: Connection) -> list[Frame]:
    """The frames the server wrote, parsed back."""
    data = b"".join(conn.transport.written)  # type: ignore[attr-defined]
    frames, pos = [], 0
    while pos < len(data):
        end = frame_end(data, pos)
        frames.append(_parse(data[pos:end]))
        pos = end
    return frames


def _parse(raw: bytes) -> Frame:
    def read_exact(n: int) -> Any:
        nonlocal raw
        chunk, raw = raw[:n], raw[n:]
        return chunk
        yield  # a generator, as Frame.parse expects

    parser = Frame.parse(read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("incomplete frame")


def _close_code(conn: Connection) -> int:
    closes = [f for f in _sent(conn) if f.opcode is Opcode.CLOSE]
    assert closes, "no Close frame sent"
    return Close.parse(closes[0].data).code


def test_whole_small_messages_take_the_fast_path_in_one_read():
    framing, conn = _framing()
    data = client(Opcode.TEXT, b"hello") + client(Opcode.BINARY, b"\x00\x01") + client(
        Opcode.TEXT, "é".encode() * 100)  # 200 bytes: a 16-bit length
    framing.frames_in(data)
    assert _received(framing) == ["hello", b"\x00\x01", "é" * 100]
    assert framing.proto is None  # no websockets protocol object was needed
    assert conn.transport.written == []


def test_a_frame_split_anywhere_is_delivered_once_whole():
    message = client(Opcode.TEXT, b"x" * 16) + client(Opcode.BINARY, b"y" * 300)
    for cut in range(1, len(message)):
        framing, _ = _framing()
        framing.frames_in(message[:cut])
        framing.frames_in(message[cut:])
        assert _received(framing) == ["x" * 16, b"y" * 300], cut
        assert framing.proto is None


def test_a_large_fast_frame_arriving_in_pieces_is_joined_once():
    framing, _ = _framing()
    frame = client(Opcode.BINARY, b"j" * 60_000)
    for start in range(0, len(frame), 1000):
        framing.frames_in(frame[start:start + 1000])
        if start + 1000 < len(frame):
            assert framing.wanted == len(frame) and _received(framing) == []
    assert _received(framing) == [b"j" * 60_000]
    assert framing.proto is None and framing.wanted == 0 and not framing.buffer


@pytest.mark.parametrize(("frame", "code"), [
    (Frame(Opcode.TEXT, b"plain").serialize(mask=False, extensions=[]), 1002),  # unmasked
    (client(Opcode.TEXT, b"compressed?", rsv1=True), 1002),  # no extension was negotiated
    (client(Opcode.TEXT, b"\xff\xfe"), 1007),  # not UTF-8
    (bytes([0x83, 0x80]) + b"\x00" * 4, 1002),  # a reserved opcode
])
def test_frames_the_fast_path_refuses_close_the_connection_as_websockets_does(frame, code):
    framing, conn = _framing()
    framing.frames_in(frame + client(Opcode.TEXT, b"after"))
    assert _received(framing) == []
    assert _close_code(conn) == code


def test_the_size_limit_applies_to_fast_frames():
    framing, conn = _framing(max_size=16)
    framing.frames_in(client(Opcode.BINARY, b"z" * 16))
    assert framing.proto is None
    framing.frames_in(client(Opcode.BINARY, b"z" * 17) + client(Opcode.TEXT, b"never"))
    assert _received(framing) == [b"z" * 16]
    assert _close_code(conn) == 1009


def test_a_large_frame_is_websockets_and_streams_to_it():
    framing, _ = _framing()
    big = b"q" * 70_000  # a 64-bit length: websockets' path
    data = client(Opcode.BINARY, big) + client(Opcode.TEXT, b"next")
    for start in range(0, len(data), 4096):
        framing.frames_in(data[start:start + 4096])
    assert _received(framing) == [big, "next"]
    assert framing.proto is not None


def test_a_mixed_stream_is_delivered_in_order():
    """Fast frames, then a fragmented message with a ping between its fragments, then fast
    frames again: the events come in the frames' order, and the pong is answered."""
    framing, conn = _framing()
    stream = b"".join([
        client(Opcode.TEXT, b"one"),
        client(Opcode.BINARY, b"two"),
        client(Opcode.TEXT, b"frag", fin=False),
        client(Opcode.PING, b"are you there"),
        client(Opcode.CONT, b"mented"),
        client(Opcode.TEXT, b"three"),
    ])
    framing.frames_in(stream)
    assert _received(framing) == ["one", b"two", "fragmented", "three"]
    pongs = [f for f in _sent(conn) if f.opcode is Opcode.PONG]
    assert [p.data for p in pongs] == [b"are you there"]
    # The same stream byte by byte: the same events.
    framing, conn = _framing()
    for i in range(len(stream)):
        framing.frames_in(stream[i:i + 1])
    assert _received(framing) == ["one", b"two", "fragmented", "three"]


def test_a_fast_frame_during_a_fragmented_message_is_a_protocol_error():
    framing, conn = _framing()
    framing.frames_in(client(Opcode.TEXT, b"frag", fin=False) + client(Opcode.TEXT, b"new"))
    assert _received(framing) == []
    assert _close_code(conn) == 1002


def test_after_a_close_frames_are_websockets():
    framing, conn = _framing()
    framing.frames_in(client(Opcode.CLOSE, Close(1000, "bye").serialize())
                      + client(Opcode.TEXT, b"late"))
    assert _received(framing) == []
    assert _close_code(conn) == 1000
    assert conn.closed


def test_a_partial_frame_at_eof_ends_abnormally():
    framing, _ = _framing()
    framing.frames_in(client(Opcode.TEXT, b"cut short")[:5])
    framing.eof_received()
    assert framing.proto is not None and framing.proto.close_code == 1006
    assert _received(framing) == []


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 16, 125, 126, 200])
def test_unmasking_gives_the_payload_the_client_masked(size):
    payload = bytes(range(256))[:size] if size <= 256 else b"u" * size
    frame = client(Opcode.BINARY, payload)
    start = 8 if size > 125 else 6
    assert unmask(frame, start, len(frame)) == payload


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000])
def test_server_frames_are_the_frames_websockets_writes(size):
    payload = b"p" * size
    expected = Frame(Opcode.BINARY, payload).serialize(mask=False, extensions=[])
    assert server_frame(0x2, payload) == expected


def test_messages_out_take_the_fast_path_unless_compressed_or_large():
    framing, conn = _framing()
    framing.send_message("hi", None)
    framing.send_message(None, b"\x01")
    framing.send_message(None, b"L" * 70_000)
    assert [(f.opcode, f.data) for f in _sent(conn)] == [
        (Opcode.TEXT, b"hi"), (Opcode.BINARY, b"\x01"), (Opcode.BINARY, b"L" * 70_000)]
    with pytest.raises(RuntimeError, match="'text' or 'bytes'"):
        framing.send_message(None, None)


def test_frame_end_waits_for_a_whole_header():
    frame = client(Opcode.BINARY, b"b" * 300)
    assert frame_end(frame, 0) == len(frame)
    for cut in range(4):  # 2 bytes, then the 16-bit length
        assert frame_end(frame[:cut], 0) == NEED_MORE
    assert frame_end(frame[:4], 0) == len(frame)
