"""Instructions per echoed WebSocket message in the server, counted by callgrind.

    .venv/bin/python bench/callgrind_ws.py [--small 2000] [--large 12000] [--pure]

As ``bench/callgrind_server.py`` does for HTTP requests (its ``instructions()`` runs this script
under ``valgrind --tool=callgrind``): each scenario runs with ``--small`` and ``--large``
messages, and the difference of the two totals over the difference of the message counts is the
cost of one message, without the start-up and the handshake. Everything runs in one process on
uvloop: a ``Server`` (``channels_distributed.server``, the build ``compiled.py`` selects) serving
an ASGI echo application on a loopback port, and a minimal client protocol that opens one
WebSocket and sends the next message, a 16-byte masked frame as a browser sends it, when the
echo of the previous one arrived. The count includes the client's few Python lines and uvloop,
not the kernel. Scenarios: ``text`` and ``binary`` messages.

``--pure`` sets ``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` (the Python sources). Needs valgrind
(apt-get install valgrind); about a minute per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

# bench/ is sys.path[0] when run as a script.
from callgrind_server import instructions, on_uvloop, serve_client

PAYLOAD = b"0123456789abcdef"  # 16 bytes, as bench/ws_echo.py sends
MASK = b"\x1f\x2e\x3d\x4c"
OPCODES = {"text": 0x1, "binary": 0x2}
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A whole, masked client frame with a payload under 126 bytes."""
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + MASK + masked


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"]})


class Client(asyncio.Protocol):
    """Opens a WebSocket, then sends ``frame`` again each time its echo arrived, ``count``
    times."""

    def __init__(self, opcode: int, count: int, done: asyncio.Future[None]) -> None:
        self.frame = client_frame(opcode, PAYLOAD)
        self.echo = bytes([0x80 | opcode, len(PAYLOAD)]) + PAYLOAD
        self.left, self.done = count, done
        self.buffer = b""
        self.upgraded = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(HANDSHAKE)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            if b"\r\n\r\n" not in self.buffer:
                return
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.done.set_exception(RuntimeError(f"handshake refused: {head!r}"))
                return
            self.upgraded = True
            self.transport.write(self.frame)
            return
        if len(self.buffer) < len(self.echo):
            return
        if self.buffer != self.echo:
            self.done.set_exception(RuntimeError(f"unexpected echo {self.buffer!r}"))
            return
        self.buffer = b""
        self.left -= 1
        if self.left:
            self.transport.write(self.frame)
        elif not self.done.done():
            self.done.set_result(None)


def child(scenario: str, count: int) -> None:
    on_uvloop(serve_client(app, lambda done: Client(OPCODES[scenario], count, done)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=12000)
    parser.add_argument("--pure", action="store_true", help="run the Python sources")
    parser.add_argument("--scenario", choices=sorted(OPCODES), action="append")
    parser.add_argument("--child", choices=sorted(OPCODES), help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    build = "pure-Python" if args.pure else "compiled"
    for scenario in args.scenario or sorted(OPCODES):
        small = instructions(scenario, args.small, args.pure, script=__file__)
        large = instructions(scenario, args.large, args.pure, script=__file__)
        per_message = (large - small) / (args.large - args.small)
        print(f"{scenario:6} {build:11} {per_message / 1000:8.1f}k instructions per message "
              f"({small:,} Ir for {args.small}, {large:,} Ir for {args.large})", flush=True)


if __name__ == "__main__":
    main()
