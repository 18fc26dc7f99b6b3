"""A worker's probe endpoints (``endpoints.py``): HOST:PORT checked at start-up, and the small
HTTP server answering GET and HEAD on a loopback socket in this process."""

from __future__ import annotations

import asyncio

import pytest

from channels_distributed.endpoints import parse_bind, serve_endpoints
from channels_distributed.exceptions import ConfigurationError


@pytest.mark.parametrize("value,expected", [("127.0.0.1:8001", ("127.0.0.1", 8001)),
                                            ("0.0.0.0:0", ("0.0.0.0", 0)),
                                            ("[::1]:9", ("::1", 9))])
def test_a_bind_is_host_and_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_bind(value, "--health-bind") == expected


@pytest.mark.parametrize("value", ["8001", ":8001", "localhost:", "h:port", "h:70000"])
def test_a_bad_bind_names_the_setting_and_the_fix(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_bind(value, "--health-bind")
    assert caught.value.setting == "--health-bind" and "127.0.0.1:8001" in caught.value.fix


async def _ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_the_server_answers_its_paths_and_nothing_else() -> None:
    state = {"ready": False}

    def ready() -> tuple[int, str, bytes]:
        return (200, "text/plain", b"ready\n") if state["ready"] else \
            (503, "text/plain", b"not ready\n")

    server = await serve_endpoints("127.0.0.1:0", {"/ready": ready}, "--health-bind")
    port = server.sockets[0].getsockname()[1]
    try:
        answer = await _ask(port, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"\r\n\r\nnot ready\n")
        state["ready"] = True
        answer = await _ask(port, b"GET /ready?x=1 HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ") and b"Cache-Control: no-store" in answer
        head = await _ask(port, b"HEAD /ready HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        assert b"Content-Length: 6" in head
        assert (await _ask(port, b"GET /other HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await _ask(port, b"POST /ready HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert (await _ask(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
        huge = b"GET /ready HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n"
        assert (await _ask(port, huge)).startswith(b"HTTP/1.1 400")
    finally:
        server.close()
        await server.wait_closed()


async def test_a_port_in_use_names_the_setting() -> None:
    server = await serve_endpoints("127.0.0.1:0", {}, "--health-bind")
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConfigurationError) as caught:
            await serve_endpoints(f"127.0.0.1:{port}", {}, "--health-bind")
        assert caught.value.setting == "--health-bind" and "cannot listen" in str(caught.value)
    finally:
        server.close()
        await server.wait_closed()
