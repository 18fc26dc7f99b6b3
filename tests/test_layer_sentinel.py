"""A Sentinel-managed master: the layer finds it through the sentinels."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import pytest

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer, free_port


class Sentinel:
    """One redis-server in sentinel mode, monitoring ``master`` as 'mymaster'."""

    def __init__(self, master: RedisServer) -> None:
        self.port = free_port()
        self.config = master.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {master.dir}\n"
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
        self.process = subprocess.Popen([master.binary, str(self.config), "--sentinel"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = RedisServer(port=self.port, binary=master.binary)
        deadline = time.monotonic() + 10
        while not probe.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis sentinel did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def sentinel(redis_fresh: RedisServer) -> Iterator[Sentinel]:
    watcher = Sentinel(redis_fresh)
    yield watcher
    watcher.stop()


async def test_layer_through_sentinel(sentinel: Sentinel, redis_fresh: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", sentinel.port)],
                                      "master_name": "mymaster"}])
    channel = await layer.new_channel()
    await layer.group_add("watched", channel)
    await layer.group_send("watched", {"type": "via.sentinel"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "via.sentinel"
    assert redis_fresh.command("EXISTS", "asgi:{g:watched}") == b":1\r\n"
    await layer.flush()
    await layer.close()


async def test_unknown_master_name_is_a_clear_error(sentinel: Sentinel) -> None:
    layer = RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", sentinel.port)],
                                      "master_name": "nosuch"}], retry_window=0.3)
    with pytest.raises(ConnectionError, match="no master 'nosuch'"):
        await layer.send("x", {"type": "x"})
    await layer.close()
