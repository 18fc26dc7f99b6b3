"""The status server's HTTP (channels_distributed/status/serve.py, httpd.py) in this process, on a
real loopback socket, with a stand-in ``collect`` giving spec-shaped statuses (the real one, over
Redis, is tested with real processes in test_serve_live.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import pytest
from helpers import wait_for_async
from statuses import route, status, worker

from channels_distributed.exceptions import ConfigurationError, RedisUnavailable
from channels_distributed.status.httpd import MAX_HEAD, HttpServer, Response
from channels_distributed.status.serve import (
    MIN_TOKEN,
    TOKEN_ENV,
    StatusServer,
    is_loopback,
    resolve_binding,
)

TOKEN = "s3cret-token-of-some-length"


class Statuses:
    """A stand-in ``collect``: each call gives the next status (queue one longer each time), or
    raises what ``fail`` holds."""

    def __init__(self) -> None:
        self.calls = 0
        self.clock = itertools.count(1000)
        self.fail: BaseException | None = None

    async def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        t = float(next(self.clock))
        return status(t, {"api": route(queued=self.calls, requests=10 * self.calls,
                                       workers=[worker("w1", served=self.calls)])})


Started = Callable[..., Awaitable[tuple[StatusServer, httpx.AsyncClient]]]


@pytest.fixture
async def started() -> AsyncIterator[Started]:
    made: list[tuple[StatusServer, httpx.AsyncClient]] = []

    async def start(collect: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
                    **options: Any) -> tuple[StatusServer, httpx.AsyncClient]:
        server = StatusServer(collect or Statuses(), **options)
        host, port = await server.start("127.0.0.1", 0)
        client = httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=5)
        made.append((server, client))
        return server, client

    yield start
    for server, client in made:
        await client.aclose()
        await server.close()


async def test_the_page_is_served_with_a_policy_that_refuses_anything_from_elsewhere(
        started: Started) -> None:
    _, client = await started()
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>channels-distributed status</title>" in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert response.headers["cache-control"] == "no-store"


async def test_status_json_holds_the_latest_status_and_the_history(started: Started) -> None:
    collect = Statuses()
    server, client = await started(collect, interval=3600)
    document = (await client.get("/status.json")).json()
    assert document["status"]["routes"]["api"]["queued"] == 1
    assert document["error"] is None and document["updated_at"] is not None
    assert document["history"]["routes"]["api"] == [[1000.0, 1, None, None, None, None]]
    await server.collect_once()
    newer = (await client.get("/status.json", params={"since": "1000"})).json()
    assert newer["history"]["routes"]["api"] == [[1001.0, 2, 10.0, 1.0, 0.0, 0.0]]
    assert (await client.get("/status.json", params={"since": "x"})).status_code == 400


async def test_one_collection_per_interval_whatever_the_clients(started: Started) -> None:
    collect = Statuses()
    _, client = await started(collect, interval=3600)
    # Many clients asking at once read what was collected: none of them makes a collection.
    paths = ["/", "/status.json", "/metrics"] * 10
    answers = await asyncio.gather(*(client.get(path) for path in paths))
    assert {answer.status_code for answer in answers} == {200}
    assert collect.calls == 1


async def test_collections_go_on_without_any_client(started: Started) -> None:
    collect = Statuses()
    await started(collect, interval=0.01)
    await wait_for_async(lambda: collect.calls >= 5, what="five collections")


async def test_a_failing_collection_is_shown_and_the_last_figures_kept(
        started: Started) -> None:
    collect = Statuses()
    server, client = await started(collect, interval=3600)
    collect.fail = RedisUnavailable("Redis at 127.0.0.1:1 refused the connection")
    await server.collect_once()
    document = (await client.get("/status.json")).json()
    assert document["error"] == ("RedisUnavailable: Redis at 127.0.0.1:1 refused the "
                                 "connection")
    assert document["status"]["routes"]["api"]["queued"] == 1  # the last figures
    collect.fail = None
    await server.collect_once()
    assert (await client.get("/status.json")).json()["error"] is None


async def test_a_collection_that_hangs_times_out(started: Started) -> None:
    async def hangs() -> Mapping[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("never")

    _, client = await started(hangs, interval=3600, timeout=0.05)
    document = (await client.get("/status.json")).json()
    assert document["status"] is None
    assert document["error"] == "TimeoutError"


async def test_unknown_paths_and_writes_are_refused(started: Started) -> None:
    _, client = await started()
    assert (await client.get("/nothing")).status_code == 404
    refused = await client.post("/status.json", content=b"{}")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"
    head = await client.head("/status.json")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0


@pytest.mark.parametrize("path", ["/", "/status.json", "/metrics"])
async def test_with_a_token_every_path_needs_it(started: Started, path: str) -> None:
    _, client = await started(token=TOKEN)
    missing = await client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 403
    assert (await client.get(path, params={"token": "wrong"})).status_code == 403
    assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            ).status_code == 200
    assert (await client.get(path, params={"token": TOKEN})).status_code == 200


async def _raw(client: httpx.AsyncClient, data: bytes) -> bytes:
    url = client.base_url
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)  # the server closes: read to the end
    writer.close()
    return answer


async def test_pipelined_requests_are_answered_in_order(started: Started) -> None:
    _, client = await started()
    answer = await _raw(client, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first, _, rest = answer.partition(b"\r\n")
    assert first == b"HTTP/1.1 404 Not Found"
    assert b"HTTP/1.1 200 OK" in rest and b"<html" not in rest  # HEAD: no body


async def test_malformed_and_oversized_requests_are_refused(started: Started) -> None:
    _, client = await started()
    assert (await _raw(client, b"NOT HTTP AT ALL\r\n\r\n")).startswith(b"HTTP/1.1 400")
    huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 1) + b"\r\n\r\n"
    assert (await _raw(client, huge)).startswith(b"HTTP/1.1 431")
    upgrade = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"\r\n")
    assert (await _raw(client, upgrade)).startswith(b"HTTP/1.1 400")


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "", "10.0.0.1", "::", "example.com"]))


def test_loopback_needs_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert resolve_binding("127.0.0.1:8765").token is None
    assert resolve_binding("[::1]:0").host == "::1"


@pytest.mark.parametrize("bind", ["0.0.0.0:8765", "[::]:8765", "10.1.2.3:80",
                                  "status.example:80"])
def test_any_other_address_needs_a_token(monkeypatch: pytest.MonkeyPatch, bind: str) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigurationError) as raised:
        resolve_binding(bind)
    assert raised.value.setting == "--token"
    assert "give --token TOKEN" in raised.value.fix
    assert "--serve 127.0.0.1:PORT" in raised.value.fix
    assert resolve_binding(bind, TOKEN).token == TOKEN


def test_the_token_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert resolve_binding("0.0.0.0:8765").token == TOKEN


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_binding("0.0.0.0:8765", "x" * (MIN_TOKEN - 1))
    assert raised.value.setting == "--token"
    assert "secrets.token_urlsafe" in raised.value.fix


@pytest.mark.parametrize("bind", ["8765", ":8765", "127.0.0.1", "127.0.0.1:http",
                                  "127.0.0.1:70000"])
def test_serve_must_be_host_and_port(bind: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_binding(bind)
    assert raised.value.setting == "--serve"
    assert "--serve 127.0.0.1:" in raised.value.fix


async def test_a_port_in_use_names_serve(started: Started) -> None:
    _, client = await started()
    other = StatusServer(Statuses())
    with pytest.raises(ConfigurationError) as raised:
        await other.start("127.0.0.1", client.base_url.port or 0)
    assert raised.value.setting == "--serve"
    await other.close()


async def test_connections_past_the_limit_are_refused_and_idle_ones_closed() -> None:
    server = HttpServer(lambda request: Response(200, b"ok"), max_connections=1,
                        idle_timeout=0.2)
    host, port = await server.start("127.0.0.1", 0)
    try:
        idle_reader, idle_writer = await asyncio.open_connection(host, port)
        await wait_for_async(lambda: server.connections == 1, what="the first connection")
        reader, writer = await asyncio.open_connection(host, port)
        refused = await asyncio.wait_for(reader.read(), 5)
        assert refused.startswith(b"HTTP/1.1 503")
        writer.close()
        # The first connection said nothing: the server closes it after its idle timeout.
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        idle_writer.close()
    finally:
        await server.close()
