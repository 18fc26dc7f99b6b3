"""A private nats-server for the benches: Debian's ``nats-server`` (``apt-get install
nats-server``, or $NATS_SERVER), on a free loopback port, started and stopped by the bench.

Named ``nats_server`` rather than ``nats``: bench/ is first on ``sys.path`` when a bench runs,
and a ``nats.py`` here would hide the nats-py package channels-nats imports.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from channels_distributed.embedded import free_port

__all__ = ["NatsServer", "find_nats_server"]


def find_nats_server() -> str:
    """The nats-server binary: $NATS_SERVER, else the one on PATH (Debian: /usr/sbin)."""
    found = os.environ.get("NATS_SERVER") or shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if not found:
        raise FileNotFoundError(
            "no nats-server: the channels-nats rows need one (apt-get install nats-server, "
            "or set NATS_SERVER to its path)")
    return found


class NatsServer:
    """One nats-server process on 127.0.0.1:<free port>, no JetStream, no persistence."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or find_nats_server()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def version(self) -> str:
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                              timeout=10, check=False)
        return done.stdout.strip() or done.stderr.strip() or "unknown version"

    def start(self, timeout: float = 10.0) -> NatsServer:
        # Its own session, as redis-server's in embedded.py: a Ctrl-C meant for the bench does
        # not kill it underneath the bench, which stops it (cleanup()).
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}")
            if self._ready():
                return self
            time.sleep(0.01)
        self.cleanup()
        raise TimeoutError(f"nats-server on port {self.port} not ready in {timeout} s")

    def _ready(self) -> bool:
        # A NATS server greets every connection with an INFO line.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(5).startswith(b"INFO")
        except OSError:
            return False

    def cleanup(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
