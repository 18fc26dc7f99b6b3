"""A Redis Sentinel process for tests: one redis-server in sentinel mode watching a master."""

from __future__ import annotations

import subprocess

from helpers import wait_for

from channels_distributed.embedded import RedisServer, free_port

__all__ = ["Sentinel"]


def _answers(server: RedisServer) -> bool:
    """Up, with or without a password (a sentinel with requirepass answers PING with NOAUTH)."""
    try:
        return bool(server.command("PING"))
    except OSError:
        return False


class Sentinel:
    """One redis-server in sentinel mode, monitoring ``master`` as 'mymaster'."""

    def __init__(self, master: RedisServer, password: str | None = None) -> None:
        self.port = free_port()
        self.config = master.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {master.dir}\n"
            + (f"requirepass {password}\n" if password else "") +
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
            # A failover that cannot complete is retried after this (default 3 minutes).
            "sentinel failover-timeout mymaster 10000\n")
        self.process = subprocess.Popen([master.binary, str(self.config), "--sentinel"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = RedisServer(port=self.port, binary=master.binary)
        wait_for(lambda: self.process.poll() is not None or _answers(probe), 10,
                 "redis sentinel to start")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis sentinel exited with {self.process.returncode}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def command(self, *args: str | int) -> bytes:
        return RedisServer(port=self.port, binary="unused").command(*args)

    def master_port(self) -> int:
        reply = self.command("SENTINEL", "get-master-addr-by-name", "mymaster")
        return int(reply.split(b"\r\n")[4])
