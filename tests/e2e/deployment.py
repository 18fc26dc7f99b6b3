"""Helpers of the distributed tests: real processes (uvicorn running the distributor,
``channels-distributed worker``) on a private redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers import WAIT, recorded, unique_prefix, wait_for

from channels_distributed.embedded import RedisCluster, RedisServer, free_port
from channels_distributed.protocol.keys import SLOTS, key_slot

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, "testproject/manage.py"]  # the test project's, run from ROOT
DJANGO_EDGE = "channels_distributed.demo.edge:application"  # the project's edge module


@dataclass
class Proc:
    """A child process whose output goes to a log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def wait(self, timeout: float = WAIT) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Servers:
    """Standalone servers as one handle, as ``Deployment.redis``: sharded (``url`` names every
    one, separated by spaces) or one master behind a sentinel (``url`` is redis+sentinel://).
    A command goes to the server the layer places its first key on; ``keys`` asks them all."""

    servers: list[RedisServer]
    url: str

    def server_for(self, key: str | int | bytes) -> RedisServer:
        # The placement of channels_distributed.transport.topology.Topology, sharded.
        return self.servers[key_slot(str(key)) * len(self.servers) // SLOTS]

    def command(self, *args: str | int | bytes) -> bytes:
        return self.server_for(args[1] if len(args) > 1 else "").command(*args)

    def keys(self, pattern: str = "*") -> list[bytes]:
        return [key for server in self.servers for key in server.keys(pattern)]

    @property
    def port(self) -> int:
        return self.servers[0].port


@dataclass
class Deployment:
    """One Redis, edges and workers sharing a key prefix; everything stopped at the end."""

    redis: RedisServer | RedisCluster | Servers
    tmp: Path
    prefix: str = field(default_factory=unique_prefix)
    procs: list[Proc] = field(default_factory=list)
    markers: Path = field(init=False)

    def __post_init__(self) -> None:
        self.markers = self.tmp / "markers"
        self.markers.mkdir(exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONPATH=str(ROOT), CD_REDIS_URL=self.redis.url, CD_PREFIX=self.prefix,
                   CD_MARKER_DIR=str(self.markers), PYTHONUNBUFFERED="1")
        env.update(extra)  # may replace the above (PYTHONPATH)
        return env

    def spawn(self, args: list[str], name: str, **env: str) -> Proc:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(args, cwd=ROOT, env=self.env(**env), stdout=out,
                                     stderr=subprocess.STDOUT)
        proc = Proc(popen, log)
        self.procs.append(proc)
        return proc

    def edge(self, worker_timeout: float = 5.0, app: str = "testproject.edge:app",
             queue_capacity: int = 10_000, server: str = "uvicorn", **env: str) -> str:
        """Start uvicorn (or gunicorn with the ASGIWorker) running the distributor; its base URL
        once it answers."""
        port = free_port()
        if server == "gunicorn":
            command = [str(Path(sys.executable).with_name("gunicorn")), app, "--bind",
                       f"127.0.0.1:{port}", "--worker-class",
                       "channels_distributed.gunicorn.ASGIWorker", "--log-level", "warning"]
        else:
            command = [sys.executable, "-m", "uvicorn", app, "--port", str(port),
                       "--log-level", "warning"]
        proc = self.spawn(command, "edge", CD_WORKER_TIMEOUT=str(worker_timeout),
                          CD_QUEUE_CAPACITY=str(queue_capacity), **env)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url, proc), what=f"the edge at {url}")
        return url

    def gunicorn_edge(self, worker_timeout: float = 5.0) -> tuple[str, Proc]:
        """gunicorn with the package's ASGIWorker running the distributor, logging as it does
        by default (no logging configuration): its base URL once it answers, and the process."""
        port = free_port()
        proc = self.spawn([sys.executable, "-m", "gunicorn", "testproject.edge:app",
                           "--worker-class", "channels_distributed.gunicorn.ASGIWorker",
                           "--workers", "1", "--bind", f"127.0.0.1:{port}"], "gunicorn-edge",
                          CD_WORKER_TIMEOUT=str(worker_timeout))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url, proc), what=f"the gunicorn edge at {url}")
        return url, proc

    def django_database(self, admin_password: str) -> dict[str, str]:
        """The Django project's SQLite database, prepared (``manage.py prepare``: migrated, an
        admin with ``admin_password``): the environment naming it, for each of its processes."""
        db = {"CD_DB": str(self.tmp / "db.sqlite3")}
        subprocess.run([*MANAGE, "prepare", "--admin-password", admin_password], cwd=ROOT,
                       check=True, timeout=120, env=self.env(**db))
        return db

    def django_edge(self, statuses: Container[int] = (200,), **env: str) -> tuple[str, Proc]:
        """gunicorn with the ASGIWorker serving the Django project's edge module: its base URL
        once ``/hello/`` answers with one of ``statuses``, and the process. ``env`` names the
        project's database (``CD_DB``), as for its workers."""
        port = free_port()
        proc = self.spawn([sys.executable, "-m", "gunicorn", DJANGO_EDGE,
                           "--worker-class", "channels_distributed.gunicorn.ASGIWorker",
                           "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], "edge",
                          **env)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url, proc, "/hello/", statuses, timeout=10),
                 what=f"the edge at {url}")
        return url, proc

    def worker(self, *keys: str, app: str = "testproject.workers:app", wait: bool = True,
               args: tuple[str, ...] = ()) -> Proc:
        # Several servers: one --url each (the edge reads them from CD_REDIS_URL, spaced).
        urls = [part for url in self.redis.url.split() for part in ("--url", url)]
        proc = self.spawn([sys.executable, "-m", "channels_distributed.cli", "worker", *keys,
                           "--app", app, *urls, "--prefix", self.prefix,
                           "--log-level", "info", *args], "worker")
        if wait:
            self.wait_registered(keys[0], proc)
        return proc

    def integer(self, *args: str | int | bytes) -> int:
        """The integer Redis answers the command ``args`` with (LLEN, ZCARD, PTTL...)."""
        reply = self.redis.command(*args)
        assert reply.startswith(b":"), reply
        return int(reply[1:].split(b"\r\n")[0])

    def reply(self, *args: str | int | bytes) -> object:
        """Redis's answer to the command ``args``, parsed (bulk strings as bytes, arrays as
        lists, nil as None)."""
        import hiredis

        reader = hiredis.Reader()
        reader.feed(self.redis.command(*args))
        return reader.gets()

    def registered(self, key: str) -> int:
        reply = self.redis.command("SCARD", f"{self.prefix}:{{rt:{key}}}:w")
        return int(reply[1:].split(b"\r\n")[0] or 0) if reply.startswith(b":") else 0

    def wait_registered(self, key: str, proc: Proc, count: int | None = None) -> None:
        before = count

        def ready() -> bool:
            if not proc.alive():
                raise AssertionError(f"worker exited early:\n{proc.output()}")
            return self.registered(key) >= (before or 1) and "serving route key" in proc.output()

        wait_for(ready, what=f"a worker on {key}")

    def redis_keys(self) -> list[bytes]:
        return self.redis.keys(f"{self.prefix}:*")

    def marker(self, name: str) -> Path:
        return self.markers / name

    def recorded(self, name: str) -> list[str]:
        """What the applications of this deployment recorded in the marker file ``name``."""
        return recorded(self.markers / name)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def answers(url: str, proc: Proc, path: str = "/not-routed", statuses: Container[int] = (),
            timeout: float = 1.0) -> bool:
    """Whether the server that ``proc`` runs answers a GET of ``url + path`` (with one of
    ``statuses``, when given): for ``wait_for``, which it fails at once, with the process's
    output, when the process exited instead."""
    if not proc.alive():
        raise AssertionError(f"the server at {url} exited early:\n{proc.output()}")
    try:
        status = httpx.get(url + path, timeout=timeout).status_code
    except httpx.HTTPError:
        return False
    return not statuses or status in statuses
