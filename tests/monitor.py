"""Redis MONITOR in a background thread: the commands a server ran, in the order it ran them."""

from __future__ import annotations

import socket
import threading

from helpers import wait_for


class Monitor:
    """Records every command a redis-server runs while it is open (a context manager)."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.sendall(b"MONITOR\r\n")
        self._lines: list[str] = []
        self._buffer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_for(lambda: self._lines, 5.0, "MONITOR to answer")  # its "+OK"

    def _read(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self._buffer += data
            *complete, self._buffer = self._buffer.split(b"\r\n")
            self._lines.extend(line.decode("utf-8", "replace") for line in complete)

    def commands(self, containing: str = "") -> list[str]:
        """Command lines seen so far (without the "+OK"), optionally only those with a text."""
        return [line.lstrip("+") for line in list(self._lines)[1:] if containing in line]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def arguments(line: str) -> list[str]:
    """The command and its leading arguments of a MONITOR line:
    ``123.4 [0 127.0.0.1:5] "BLMOVE" "a" ...`` -> ["BLMOVE", "a", ...] (binary ones escaped)."""
    return line.split('] "', 1)[1].rstrip('"').split('" "')


def command_name(line: str) -> str:
    return arguments(line)[0].upper()

