"""An open WebSocket's frames: a fast path for whole small messages, ``websockets`` for the rest.

Most messages an application exchanges are small, whole, uncompressed frames. The fast path reads
those straight from the received bytes (FIN set, no reserved bit, text or binary, masked as a
client must, a length under 64 KiB and within ``ws_max_message_size``) and writes the
application's messages as single unmasked frames, with no ``websockets`` protocol object at all.
Every other frame (a fragment, a control frame, an unmasked or oversized one, a reserved bit or
opcode) goes to the ``websockets`` sans-I/O protocol, created at the first such frame; so does
everything once the connection is closing, or from the start when permessage-deflate was
negotiated. Frames are routed one by one and in order: the protocol object is given exactly the
bytes of the frames it is to parse (streamed, as they arrive, so that its size limit applies at
the frame's header), and the fast path resumes at the next frame once no fragmented message is
in progress. Both paths deliver the same ASGI events in the order the frames came.
"""

from __future__ import annotations

import logging
from asyncio import InvalidStateError
from collections import deque
from struct import Struct
from typing import TYPE_CHECKING, Any, cast

from websockets.frames import Frame, Opcode
from websockets.protocol import State

try:  # websockets' C helper; its pure-Python twin where the extension is missing
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets ships wheels with it
    from websockets.utils import apply_mask

from channels_distributed.server.flow import BODY_BUFFERED
from channels_distributed.server.handshake import ServerSide

if TYPE_CHECKING:
    import asyncio

    from websockets.extensions import Extension

    from channels_distributed.server.base import Connection
    from channels_distributed.server.context import ServerContext

__all__ = ["CLOSED", "CONNECTING", "NEED_MORE", "OPEN", "RESPONDING", "Framing", "frame_end",
           "server_frame", "unmask"]

ws_logger = logging.getLogger("channels_distributed.server.websocket")
# The session's states: the handshake awaits the application's answer, a denial response is
# being sent, the connection is open, it is closed.
CONNECTING, RESPONDING, OPEN, CLOSED = range(4)
NEED_MORE = -1  # frame_end(): the frame's header is not complete yet
MAX_PENDING = 64  # received messages queued for the application before reading pauses
CLOSE_WAIT = 5.0  # seconds to wait for the peer's close frame after ours
_SHORT = Struct("!BBH")  # a header with a 16-bit length
_LONG = Struct("!BBQ")  # a header with a 64-bit length
_TEXT, _BINARY = 0x1, 0x2
_HUGE = 1 << 60
# The 2-byte headers of whole text and binary frames with 0-125 byte payloads, by opcode, made
# once.
_HEADS = [[bytes((0x80 | opcode, length)) for length in range(126)] for opcode in range(3)]
# Whether this module runs compiled (its file is the extension, not the .py).
_COMPILED = not __file__.endswith(".py")
_FAST_LIMIT = 65536  # payloads from here on take websockets' path (their length has 8 bytes)


def frame_end(data: bytes, pos: int) -> int:
    """Where the frame starting at ``data[pos]`` ends, or ``NEED_MORE`` while its header is
    incomplete. Any frame: the routing needs the extent of those websockets parses too."""
    left = len(data) - pos
    if left < 2:
        return NEED_MORE
    second = data[pos + 1]
    length = second & 0x7F
    size = 6 if second & 0x80 else 2
    if length == 126:
        if left < 4:
            return NEED_MORE
        length = (data[pos + 2] << 8) | data[pos + 3]
        size += 2
    elif length == 127:
        if left < 10:
            return NEED_MORE
        # Bounded, so that the end fits a C integer when compiled: a frame this long is
        # websockets' to refuse or to wait for, never read through.
        length = min(int.from_bytes(data[pos + 2 : pos + 10], "big"), _HUGE)
        size += 8
    return pos + size + length


def unmask(data: bytes, start: int, end: int) -> bytes:
    """The payload ``data[start:end]`` of a client frame, unmasked with the 4 bytes before it."""
    if not _COMPILED or end - start > 125:
        return apply_mask(data[start:end], data[start - 4 : start])
    # Compiled, a C loop over a short payload costs less than the two slices and the call.
    out = bytearray(end - start)
    for i in range(end - start):
        out[i] = data[start + i] ^ data[start - 4 + (i & 3)]
    return bytes(out)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A whole, unmasked frame of ``payload`` (a server never masks, RFC 6455 section 5.1)."""
    length = len(payload)
    if length < 126:
        return _HEADS[opcode][length] + payload
    if length < 65536:
        return _SHORT.pack(0x80 | opcode, 126, length) + payload
    return _LONG.pack(0x80 | opcode, 127, length) + payload


class Framing:
    """The open connection's frames both ways, and the queue of ASGI events it feeds (the base of
    ``websocket.WebSocketSession``, which adds the handshake and the ASGI conversation)."""

    def __init__(self, conn: Connection, context: ServerContext, rest: bytes) -> None:
        self.conn = conn
        self.context = context
        self.transport = conn.transport
        self.flow = conn.flow
        self.loop = conn.loop
        self.state = CONNECTING
        self.gone: dict[str, Any] | None = None  # websocket.disconnect, once the client left
        self.opened = False  # the handshake is done: frames are read
        self.buffer = bytearray(rest)  # bytes before the handshake's end, or of a partial frame
        self.events: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self.waiter: asyncio.Future[None] | None = None
        self.proto: ServerSide | None = None
        self.extensions: list[Extension] = []
        self.max_size = 0  # 0: no limit
        self.fast = True  # no extension negotiated: the fast path may run
        self.slow_left = 0  # bytes of the current frame still owed to the protocol object
        self.wanted = 0  # the size of the partial fast frame in the buffer, once known
        self.fragments: list[bytes] = []
        self.fragment_opcode: Opcode | None = None
        self.last_seen = context.now
        self.ping_sent = 0.0
        self.close_deadline = 0.0

    # -- the protocol object, when needed ---------------------------------------------------

    def protocol(self) -> ServerSide:
        """The ``websockets`` protocol object, made at its first use on an open connection."""
        proto = self.proto
        if proto is None:
            proto = ServerSide(state=State.OPEN, max_size=self.max_size or None,
                               logger=ws_logger)
            proto.extensions = self.extensions
            self.proto = proto
        return proto

    def is_open(self) -> bool:
        """Whether our side may still send data frames (neither Close sent nor the connection
        failed)."""
        return self.proto is None or self.proto.state is State.OPEN

    # -- frames in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.context.now
        if not self.opened:
            self.buffer += data
            if len(self.buffer) > 65536:
                self.flow.pause_reading(BODY_BUFFERED)
            return
        self.frames_in(data)

    def frames_in(self, data: bytes) -> None:
        """Route the frames of ``data`` (after any partial frame kept) in order."""
        if self.buffer:
            self.buffer += data
            if len(self.buffer) < self.wanted:
                return  # the fast frame kept is still incomplete: no copy until it is whole
            data = bytes(self.buffer)
            self.buffer = bytearray()
            self.wanted = 0
        proto = self.proto
        if not self.fast or (proto is not None and proto.state is not State.OPEN):
            self._slow(data)  # compression, or closing: everything is websockets'
            return
        pos, total, delivered = 0, len(data), False
        while pos < total:
            if self.slow_left:
                take = min(self.slow_left, total - pos)
                self.slow_left -= take
                self._slow(data[pos : pos + take])
                pos += take
                proto = self.proto
                if proto is not None and proto.state is not State.OPEN:
                    self._slow(data[pos:])
                    break
                continue
            end = frame_end(data, pos)
            if end == NEED_MORE:
                self.buffer = bytearray(data[pos:])
                break
            if self._fast_frame(data, pos, end):
                if end > total:  # whole frames only: wait for the rest
                    self.buffer = bytearray(data[pos:])
                    self.wanted = end - pos
                    break
                delivered = True
                if not self._deliver_fast(data, pos, end):
                    self._slow(data[end:])  # it failed the connection: the rest is discarded
                    break
                pos = end
            else:
                self.slow_left = end - pos
        if delivered:
            self.wake()

    def _fast_frame(self, data: bytes, pos: int, end: int) -> bool:
        """Whether the frame at ``pos`` is the fast path's: a whole text or binary message,
        masked, short, within the size limit, outside a fragmented message."""
        first, second = data[pos], data[pos + 1]
        if (first != 0x81 and first != 0x82) or not second & 0x80 or second & 0x7F == 127:
            return False
        if self.fragments or (self.proto is not None and self.proto.state is not State.OPEN):
            return False
        size = end - pos - (8 if second & 0x7F == 126 else 6)
        return not self.max_size or size <= self.max_size

    def _deliver_fast(self, data: bytes, pos: int, end: int) -> bool:
        """Queue the message of the fast frame at ``pos``; False if it failed the connection."""
        start = pos + (8 if data[pos + 1] & 0x7F == 126 else 6)
        payload = unmask(data, start, end)
        event: dict[str, Any]
        if data[pos] == 0x81:
            try:
                event = {"type": "websocket.receive", "text": payload.decode("utf-8")}
            except UnicodeDecodeError:
                self.protocol().fail(1007, "invalid UTF-8 in a text message")
                self.flush()
                return False
        else:
            event = {"type": "websocket.receive", "bytes": payload}
        self.events.append(event)
        if len(self.events) > MAX_PENDING:
            self.flow.pause_reading(BODY_BUFFERED)
        return True

    def _slow(self, data: bytes) -> None:
        """Give ``data`` to the protocol object, and act on what it parsed."""
        if not data:
            return
        proto = self.protocol()
        proto.receive_data(data)
        self.process()

    def eof_received(self) -> bool | None:
        if self.opened:
            rest, self.buffer = bytes(self.buffer), bytearray()
            proto = self.protocol()
            if rest:
                proto.receive_data(rest)  # a partial frame: websockets says how it ends
            proto.receive_eof()
            self.process()
        return None

    def process(self) -> None:
        proto = self.proto
        if proto is None:
            return
        for event in proto.events_received():
            frame = cast(Frame, event)
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self.fragment_opcode = opcode
                self.fragments = [bytes(frame.data)]
            elif opcode is Opcode.CONT:
                self.fragments.append(bytes(frame.data))
            elif opcode is Opcode.PONG:
                self.ping_sent = 0.0
                continue
            else:
                continue
            if frame.fin:
                self._deliver()
        self.flush()

    def _deliver(self) -> None:
        data = b"".join(self.fragments)
        self.fragments = []
        event: dict[str, Any]
        if self.fragment_opcode is Opcode.TEXT:
            try:
                event = {"type": "websocket.receive", "text": data.decode("utf-8")}
            except UnicodeDecodeError:
                if self.proto is not None:
                    self.proto.fail(1007, "invalid UTF-8 in a text message")
                return
        else:
            event = {"type": "websocket.receive", "bytes": data}
        self.events.append(event)
        if len(self.events) > MAX_PENDING:
            self.flow.pause_reading(BODY_BUFFERED)
        self.wake()

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            # try, not contextlib.suppress: no context manager per message; and no done()
            # call first, which a message would pay for the rare cancelled waiter.
            try:  # noqa: SIM105
                waiter.set_result(None)
            except InvalidStateError:  # cancelled with the task awaiting it: nobody to wake
                pass

    # -- ASGI: the hot half -----------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while not self.events:
            if self.gone is not None:
                return self.gone
            self.waiter = self.loop.create_future()
            await self.waiter
        event = self.events.popleft()
        if len(self.events) < MAX_PENDING // 2:
            self.flow.resume_reading(BODY_BUFFERED)
        return event

    async def send(self, message: dict[str, Any]) -> None:
        if self.sent_at_once(message):
            if self.flow.write_paused:
                await self.flow.drain()
            return
        await self.answer(message)

    def sent_at_once(self, message: dict[str, Any]) -> bool:
        """Send ``message`` if it is a message on an open connection; whether it was."""
        if self.state != OPEN:
            return False
        # Compiled, the reads of a dict are C calls (framing.pxd).
        fields = message if type(message) is dict else dict(message)
        if fields["type"] != "websocket.send" or not self.is_open():
            return False
        self.send_message(fields.get("text"), fields.get("bytes"))
        return True

    async def answer(self, message: dict[str, Any]) -> None:
        """Every other message the application sends, in every state (the session's)."""
        raise NotImplementedError("the session answers the handshake and closes")

    # -- frames out -------------------------------------------------------------------------

    def send_message(self, text: str | None, data: bytes | None) -> None:
        """One message of the application, as a single frame (the connection is open)."""
        if text is not None:
            opcode, payload = _TEXT, text.encode("utf-8")
        elif data is not None:
            opcode, payload = _BINARY, data
        else:
            raise RuntimeError("websocket.send needs 'text' or 'bytes'")
        if self.fast and len(payload) < _FAST_LIMIT:
            if not self.conn.closed:
                self.transport.write(server_frame(opcode, payload))
            return
        proto = self.protocol()
        if opcode == _TEXT:
            proto.send_text(payload)
        else:
            proto.send_binary(payload)
        self.flush()

    def flush(self) -> None:
        """Write what the protocol object has to send; close when its state says so."""
        proto = self.proto
        if proto is None:
            return
        data = proto.data_to_send()
        if data:
            payload = b"".join(data)
            if payload and not self.conn.closed:
                self.transport.write(payload)
        if proto.eof_sent or proto.state is State.CLOSED:
            # The closing handshake is complete (or the connection failed): a server closes
            # TCP first (RFC 6455 section 7.1.1).
            self.conn.close()
        elif proto.close_expected() and not self.close_deadline:
            # Our Close went first: the client's Close is awaited, within a bound.
            self.close_deadline = self.context.now + CLOSE_WAIT
