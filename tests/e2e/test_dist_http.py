"""HTTP end to end: httpx -> uvicorn running the distributor -> Redis -> worker processes."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import socket
import time

import httpx
import pytest
from deployment import Deployment
from helpers import wait_for

TIMEOUT = httpx.Timeout(30.0)


def get(deployment: Deployment, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(deployment.url + path, timeout=TIMEOUT, **kwargs)  # type: ignore[attr-defined,arg-type]


@pytest.mark.core
def test_hello_goes_through_a_worker(shared: Deployment) -> None:
    response = get(shared, "/t/hello")
    assert response.status_code == 200
    assert response.text == f"Hello from worker {response.headers['x-worker-pid']}\n"


def test_scope_is_forwarded_intact(shared: Deployment) -> None:
    response = httpx.post(shared.url + "/t/scope?a=1&b=%20", content=b"x",  # type: ignore[attr-defined]
                          headers={"X-Custom": "yes", "Cookie": "k=v"}, timeout=TIMEOUT)
    scope = response.json()
    assert scope["type"] == "http"
    assert scope["method"] == "POST"
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/t/scope"
    assert scope["raw_path"] == "/t/scope"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert ["x-custom", "yes"] in scope["headers"]
    assert ["cookie", "k=v"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"][1] == int(shared.url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    assert scope["state"] == {}  # the worker's own lifespan state, not the edge's
    assert "extensions" not in scope


def test_unrouted_path_is_404_and_never_queued(shared: Deployment) -> None:
    before = set(shared.redis_keys())
    assert get(shared, "/nothing-here").status_code == 404
    assert set(shared.redis_keys()) == before


@pytest.mark.parametrize("path", ["/x/a%20b", "/x/" + "a" * 100, "/x/a{b}", "/x/"])
def test_invalid_key_expansion_is_404(shared: Deployment, path: str) -> None:
    before = set(shared.redis_keys())
    assert get(shared, path).status_code == 404
    assert set(shared.redis_keys()) == before


@pytest.mark.parametrize("path", ["/x/foo%0a", "/x/foo%0d%0a", "/x/foo%00", "/x/f%09oo",
                                  "/x/foo%7f", "/t/hello%0a"])
def test_path_with_control_characters_is_400_and_never_routed(shared: Deployment,
                                                              path: str) -> None:
    # "^/x/(.*)$" must not route "/x/foo\n" as "foo": Python's $ matches before a trailing
    # newline. No route is written for control characters, so none reaches routing.
    before = set(shared.redis_keys())
    response = get(shared, path)
    assert response.status_code == 400
    assert "control characters" in response.text
    assert set(shared.redis_keys()) == before


@pytest.mark.core
def test_streaming_response_arrives_in_order(shared: Deployment) -> None:
    with httpx.stream("GET", shared.url + "/t/stream", timeout=TIMEOUT) as response:  # type: ignore[attr-defined]
        body = b"".join(response.iter_bytes())
    assert body == b"part0\npart1\npart2\npart3\npart4\nend\n"


@pytest.mark.core
def test_large_upload_streams_through(shared: Deployment) -> None:
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(50):
            digest.update(block)
            yield block

    response = httpx.post(shared.url + "/t/upload", content=chunks(), timeout=TIMEOUT)  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.json() == {"size": 50 * 1024 * 1024, "sha256": digest.hexdigest()}


@pytest.mark.parametrize("one", ["0", "1"])
def test_large_download_streams_through(shared: Deployment, one: str) -> None:
    size, digest = 0, hashlib.sha256()
    with httpx.stream("GET", f"{shared.url}/t/download?mb=50&one={one}",  # type: ignore[attr-defined]
                      timeout=TIMEOUT) as response:
        for piece in response.iter_bytes():
            size += len(piece)
            digest.update(piece)
    block = bytes(range(256)) * 4096
    assert size == 50 * 1024 * 1024
    assert digest.hexdigest() == hashlib.sha256(block * 50).hexdigest()


def test_expect_100_continue(shared: Deployment) -> None:
    host, port = shared.url.removeprefix("http://").split(":")  # type: ignore[attr-defined]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /t/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        reply = b""
        while b"sha256" not in reply:
            reply += sock.recv(65536)
    assert hashlib.sha256(b"hello").hexdigest().encode() in reply


def test_app_error_before_response_is_500(shared: Deployment) -> None:
    assert get(shared, "/t/boom-before").status_code == 500
    assert get(shared, "/t/hello").status_code == 200  # the node keeps serving


def test_app_error_after_response_started_aborts(shared: Deployment) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        get(shared, "/t/boom-after")
    assert get(shared, "/t/hello").status_code == 200


def test_slow_request_does_not_block_fast_ones(shared: Deployment) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        slow = [pool.submit(get, shared, "/t/slow?s=3") for _ in range(4)]
        fast = [get(shared, "/t/hello") for _ in range(20)]
        assert all(r.status_code == 200 for r in fast)
        assert not any(f.done() for f in slow)  # the fast ones finished while these still run
        assert all(f.result().status_code == 200 for f in slow)


def test_many_concurrent_requests(shared: Deployment) -> None:
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: get(shared, "/t/hello"), range(200)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.headers["x-worker-pid"] for r in responses}) == 2  # both workers served


@pytest.mark.core
def test_client_disconnect_reaches_the_app(shared: Deployment) -> None:
    tag = f"dc{time.monotonic_ns()}"
    host, port = shared.url.removeprefix("http://").split(":")  # type: ignore[attr-defined]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /t/wait-disconnect?tag={tag} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_for(shared.marker(f"started-{tag}").exists, what="the app to start")
    wait_for(shared.marker(f"disconnected-{tag}").exists, what="http.disconnect in the app")


def test_garbage_on_a_route_key_is_skipped(shared: Deployment) -> None:
    queue = f"{shared.prefix}:{{rt:t}}:q"
    shared.redis.command("RPUSH", queue, b"\x00garbage\xff", json.dumps({"t": "x"}))
    wait_for(lambda: b":0" in shared.redis.command("LLEN", queue), what="garbage consumed")
    assert get(shared, "/t/hello").status_code == 200


def test_no_per_connection_key_is_left(shared: Deployment) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: get(shared, "/t/hello"), range(100)))

    def settled() -> bool:
        return all(_allowed(key) for key in shared.redis_keys())

    wait_for(settled, what=f"only long-lived keys, found {shared.redis_keys()}")


def _allowed(key: bytes) -> bool:
    # Route queues, registries and reaper locks of route keys; leases, cards and inboxes of live
    # processes, and the directory of processes. Nothing per connection.
    text = key.decode()
    return text.endswith((":w", ":lock", ":lease", ":card", ":in", "}:q", ":directory"))


def test_legacy_consumer_worker(shared: Deployment) -> None:
    shared.worker("k-legacy", app="testproject.workers:legacy_consumer")
    response = get(shared, "/k/legacy/x")
    assert response.status_code == 200
    assert response.text == "legacy /k/legacy/x"


def test_named_group_route(shared: Deployment) -> None:
    shared.worker("team-blue")
    assert get(shared, "/named/blue/hello").status_code == 200
