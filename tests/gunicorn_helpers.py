"""A real gunicorn master with the ASGIWorker on a free port (the ``gunicorn``, ``echo_server``
and ``edge_server`` fixtures), and raw-socket HTTP clients: for the tests of the worker
(``tests/test_gunicorn.py``) and of the HTTP server it runs (``tests/server``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import recorded, wait_for
from leaving import request_in_flight

from channels_distributed.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
WORKER = "channels_distributed.gunicorn.ASGIWorker"
READY = "ASGIWorker serving"


@dataclass
class Gunicorn:
    app: str
    args: list[str]
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"gunicorn-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, ready: bool = True) -> Gunicorn:
        command = [
            GUNICORN,
            self.app,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--worker-class",
            WORKER,
            "--workers",
            "1",
            "--graceful-timeout",
            "10",
            "--log-level",
            "debug",
            "--error-logfile",
            "-",
            *self.args,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RECORD_DIR": str(self.workdir), **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, count: int = 1) -> None:
        wait_for(
            lambda: self.log().count(READY) >= count or self.proc.poll() is not None,  # type: ignore[union-attr]
            timeout=20,
            what="the worker to serve",
        )
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def recorded(self, name: str) -> list[str]:
        """What the application and the hooks recorded in the file ``name`` (``RECORD_DIR``)."""
        return recorded(self.workdir / name)

    def request_in_flight(self, delay: float, results: list[Any]) -> threading.Thread:
        """A GET of ``/slow`` (``testproject.apps_server:echo``: answered after ``delay``
        seconds) in a thread: ``leaving.request_in_flight``."""
        return request_in_flight(f"{self.url}/slow", lambda: self.recorded("slow-start"),
                                 results, headers={"X-Delay": str(delay)})


# -- raw HTTP over sockets ------------------------------------------------------------------


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Reader:
    """Reads HTTP/1.1 responses from a socket, in order (for pipelining and keep-alive)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed; buffered {self.buffer!r}")
        end = self.buffer.index(b"\r\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read(self, head: bool = False) -> Response:
        version, status, reason = [*self._line().decode("latin-1").split(" ", 2), ""][:3]
        headers = []
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        response = Response(int(status), reason, headers, b"", version)
        if head or int(status) in (204, 304) or int(status) < 200:
            return response
        if response.header("transfer-encoding") == "chunked":
            response.body = self._chunked()
        elif response.header("content-length") is not None:
            response.body = self._exact(int(response.header("content-length") or 0))
        else:
            response.body = self.read_to_close()
        return response

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                self._line()
                return bytes(body)
            body += self._exact(size)
            self._line()

    def read_to_close(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def closed(self) -> bool:
        """True once the peer closed the connection (anything buffered is kept)."""
        try:
            return not self._fill()
        except ConnectionResetError:
            return True


def request(port: int, data: bytes, head: bool = False) -> tuple[Response, bool]:
    """Send ``data`` on a new connection, read one response, then whether the server closed.

    Use for requests after which the server is expected to close (or to see that it does):
    a connection left open makes ``closed`` wait for the idle keep-alive timeout.
    """
    with connect(port) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        response = reader.read(head=head)
        return response, reader.closed()


def exchange(port: int, data: bytes) -> bytes:
    """Send raw ``data``; return everything the server sends until it closes the connection."""
    with connect(port) as sock:
        sock.sendall(data)
        return Reader(sock).read_to_close()
