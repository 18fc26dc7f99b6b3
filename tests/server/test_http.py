"""HTTP/1.1 behaviour of the ASGIWorker against a real gunicorn master and real clients."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from gunicorn_helpers import Reader, connect, exchange, request
from helpers import wait_for


def _json(response: httpx.Response | bytes) -> dict:  # type: ignore[type-arg]
    return json.loads(response if isinstance(response, bytes) else response.content)


@pytest.mark.core
def test_get_scope(echo_server):
    response = httpx.get(f"{echo_server.url}/a%20b/c?x=1&y=%20", headers={"X-Test": "yes"})
    assert response.status_code == 200
    info = response.json()
    assert info["path"] == "/a b/c"
    assert info["raw_path"] == "/a%20b/c"
    assert info["query_string"] == "x=1&y=%20"
    assert info["method"] == "GET"
    assert info["http_version"] == "1.1"
    assert info["scheme"] == "http"
    assert info["client"][0] == "127.0.0.1"
    assert info["server"] == ["127.0.0.1", echo_server.port]
    assert ["x-test", "yes"] in info["headers"]
    assert info["state"] == ["ready"]  # lifespan state is copied into each scope
    assert response.headers["server"] == "channels-distributed"
    assert "date" in response.headers


@pytest.mark.core
def test_keep_alive_reuses_connection(echo_server):
    with httpx.Client() as client:
        first = client.get(f"{echo_server.url}/one").json()
        second = client.get(f"{echo_server.url}/two").json()
    assert first["client"] == second["client"]


@pytest.mark.core
def test_post_body_and_chunked_body(echo_server):
    response = httpx.post(f"{echo_server.url}/p", content=b"hello world")
    assert response.json()["body"] == "hello world"
    response = httpx.post(f"{echo_server.url}/p", content=iter([b"chunk-1 ", b"chunk-2"]))
    assert response.json()["body"] == "chunk-1 chunk-2"
    assert ["transfer-encoding", "chunked"] in response.json()["headers"]


@pytest.mark.core
def test_pipelining_answers_in_order(echo_server):
    requests = (
        b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Delay: 0.3\r\n\r\n"
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with connect(echo_server.port) as sock:
        sock.sendall(requests)
        reader = Reader(sock)
        bodies = [reader.read().body for _ in range(4)]
        assert reader.closed()
    assert bodies[0] == b"slow done"
    assert [_json(b)["path"] for b in bodies[1:]] == ["/first", "/second", "/third"]
    assert _json(bodies[2])["body"] == "hello"


@pytest.mark.core
def test_expect_100_continue(echo_server):
    with connect(echo_server.port) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(sock)
        interim = reader.read()
        assert interim.status == 100
        sock.sendall(b"body")
        final = reader.read()
    assert final.status == 200
    assert _json(final.body)["body"] == "body"


def test_unknown_expectation_is_417(echo_server):
    response, closed = request(
        echo_server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: x-magic\r\nContent-Length: 0\r\n\r\n",
    )
    assert response.status == 417
    assert closed


def test_streaming_is_chunked_for_http11(echo_server):
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        response = Reader(sock).read()
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"chunk0;chunk1;chunk2;"


def test_streaming_to_http10_is_close_delimited(echo_server):
    response, closed = request(echo_server.port, b"GET /stream HTTP/1.0\r\n\r\n")
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert response.body == b"chunk0;chunk1;chunk2;"
    assert closed


def test_http10_keep_alive(echo_server):
    with connect(echo_server.port) as sock:
        reader = Reader(sock)
        for path in (b"/a", b"/b"):
            sock.sendall(b"GET " + path + b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = reader.read()
            assert response.header("connection") == "keep-alive"
            assert _json(response.body)["http_version"] == "1.0"


@pytest.mark.parametrize(
    ("request_line", "connection", "version", "kept"),
    [
        (b"HTTP/1.1", b"", "1.1", True),
        (b"HTTP/1.1", b"Connection: close\r\n", "1.1", False),
        (b"HTTP/1.1", b"Connection: keep-alive\r\n", "1.1", True),
        (b"HTTP/1.0", b"", "1.0", False),
        (b"HTTP/1.0", b"Connection: keep-alive\r\n", "1.0", True),
        (b"HTTP/1.0", b"Connection: close\r\n", "1.0", False),
    ],
)
def test_http_version_and_persistence(echo_server, request_line, connection, version, kept):
    # The server infers HTTP/1.1 from a kept-alive request without a Connection field rather
    # than asking the parser for the version string: every shape must still come out right.
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET /v " + request_line + b"\r\nHost: x\r\n" + connection + b"\r\n")
        response = Reader(sock).read()
        assert _json(response.body)["http_version"] == version
        assert (response.header("connection") != "close") is kept


@pytest.mark.core
def test_head_204_304_framing(echo_server):
    with connect(echo_server.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = reader.read(head=True)
        assert head.header("transfer-encoding") is None
        sock.sendall(b"GET /status?204 HTTP/1.1\r\nHost: x\r\n\r\n")
        no_content = reader.read()
        assert no_content.status == 204 and no_content.header("content-length") is None
        sock.sendall(b"GET /status?304 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().status == 304
        # Nothing stray was written: the next response parses cleanly on the same connection.
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _json(reader.read().body)["path"] == "/after"


def test_reason_phrases(echo_server):
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET /status?418 HTTP/1.1\r\nHost: x\r\n\r\n")
        response = Reader(sock).read()
    assert (response.status, response.reason) == (418, "I'm a Teapot")


def test_short_body_against_content_length_closes(echo_server):
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
        data = Reader(sock).read_to_close()
    assert data.endswith(b"\r\n\r\nshort")  # 5 of 10 declared bytes, then the connection closed


def test_application_error_is_500(echo_server):
    response, closed = request(echo_server.port, b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 500
    assert closed


@pytest.mark.parametrize(
    "kind", ["value-lf", "value-cr", "value-nul", "name-colon", "name-cr", "not-bytes"]
)
def test_response_header_that_would_split_the_response_is_500(echo_server, kind):
    raw = exchange(
        echo_server.port,
        b"GET /bad-header?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        % kind.encode(),
    )
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"injected" not in raw and b"never" not in raw


def test_response_header_checks_hold_for_a_name_or_value_seen_before(echo_server):
    # The server checks each distinct clean field once and remembers it: a bad field must still
    # be refused when its name or its value alone went out before, in any order.
    for kind in (b"clean", b"value-lf", b"clean", b"name-cr", b"name-colon", b"clean"):
        raw = exchange(
            echo_server.port,
            b"GET /bad-header?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % kind,
        )
        if kind == b"clean":
            assert raw.startswith(b"HTTP/1.1 200 ") and b"\r\nx-a: 1\r\n" in raw
        else:
            assert raw.startswith(b"HTTP/1.1 500 ") and b"injected" not in raw


def test_client_leaving_mid_body_is_not_an_error(gunicorn):
    # The application reads, gets http.disconnect and returns without a response: the normal
    # end of a request whose client left. Nothing is logged as an error (uvicorn logs nothing).
    server = gunicorn("edge_apps:app", "--pythonpath", str(Path(__file__).parent))
    with connect(server.port) as sock:
        sock.sendall(b"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npart")
    wait_for(lambda: "disconnect" in server.recorded("reader"), what="http.disconnect")
    # A request served after it: whatever the first one logged is in the log by then.
    response, _ = request(
        server.port, b"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
    )
    assert response.status == 200
    assert "[ERROR]" not in server.log()
    # Returning without a response while the client waits is still an application error.
    response, _ = request(server.port, b"GET /no-response HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 500
    assert "returned without completing the response to GET /no-response" in server.log()


def test_large_upload_with_slow_reader(echo_server):
    size = 5 * 1024 * 1024
    response = httpx.post(f"{echo_server.url}/count-body", content=b"u" * size, timeout=30)
    assert response.text == str(size)


def test_large_download_with_slow_client(echo_server):
    size = 8 * 1024 * 1024
    with socket.socket() as sock:
        # A small receive window set before connecting: the server's writes back up and pause.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", echo_server.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Size: %d\r\n\r\n" % size)
        response = Reader(sock).read()
    assert len(response.body) == size


def test_unread_body_is_drained_within_bound(echo_server):
    with connect(echo_server.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        assert reader.read().body == b"did not read"
        sock.sendall(b"x" * 5000 + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _json(reader.read().body)["path"] == "/next"
    # More than CD_MAX_DRAIN unread bytes: the server closes rather than read them all.
    with connect(echo_server.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        assert reader.read().body == b"did not read"
        assert reader.closed()


def test_forwarded_headers_from_trusted_peer(echo_server):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9, 127.0.0.1"}
    info = httpx.get(f"{echo_server.url}/f", headers=headers).json()
    assert info["scheme"] == "https"
    assert info["client"][0] == "203.0.113.9"


def test_contradictory_scheme_headers_are_400(echo_server):
    response, closed = request(
        echo_server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    )
    assert response.status == 400
    assert closed


def test_forwarded_headers_ignored_from_untrusted_peer(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "--forwarded-allow-ips", "10.9.9.9")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    info = httpx.get(f"{server.url}/f", headers=headers).json()
    assert info["scheme"] == "http"
    assert info["client"][0] == "127.0.0.1"


def test_root_path(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "--root-path", "/api")
    info = httpx.get(f"{server.url}/items").json()
    assert info["root_path"] == "/api"
    assert info["path"] == "/api/items"


def test_proxy_protocol_v1_and_v2(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "--proxy-protocol", "auto")
    v1 = b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nGET /v1 HTTP/1.1\r\nHost: x\r\n\r\n"
    response, _ = request(server.port, v1.replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n"))
    assert _json(response.body)["client"] == ["198.51.100.7", 40000]
    address = bytes([198, 51, 100, 8]) + bytes([192, 0, 2, 1]) + (40001).to_bytes(2, "big")
    v2 = (
        b"\r\n\r\n\x00\r\nQUIT\n"
        + b"\x21\x11"
        + (12).to_bytes(2, "big")
        + address
        + (443).to_bytes(2, "big")
        + b"GET /v2 HTTP/1.0\r\n\r\n"
    )
    response, _ = request(server.port, v2)
    assert _json(response.body)["client"] == ["198.51.100.8", 40001]
    response, closed = request(server.port, b"PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\n\r\n")
    assert response.status == 400 and closed


def test_access_log_through_gunicorn_logger(gunicorn, tmp_path):
    access = tmp_path / "access.log"
    server = gunicorn(
        "testproject.apps_server:echo",
        "--access-logfile",
        str(access),
        "--access-logformat",
        '%(h)s "%(r)s" %(s)s %(b)s "%(a)s"',
    )
    httpx.get(f"{server.url}/logged?q=1", headers={"User-Agent": "probe/1"})
    line = wait_for_line(access)
    assert line == '127.0.0.1 "GET /logged?q=1 HTTP/1.1" 200 ' + line.split(" ")[-2] + ' "probe/1"'


def test_access_log_request_time_has_microsecond_resolution(gunicorn, tmp_path):
    # uvloop's loop.time() moves once a millisecond: %(D)s must not come out as 0 or 1000.
    access = tmp_path / "access.log"
    server = gunicorn("testproject.apps_server:echo", "--access-logfile", str(access),
                      "--access-logformat", "%(D)s")
    with httpx.Client() as client:
        for _ in range(5):
            client.get(f"{server.url}/timed")
    wait_for(lambda: access.exists() and len(access.read_text().split()) == 5,
             what="five access log lines")
    micros = [int(value) for value in access.read_text().split()]
    assert any(value % 1000 for value in micros), micros


def test_gc_threshold_setting(gunicorn):
    default = httpx.get(f"{gunicorn('testproject.apps_server:echo').url}/gc").json()
    assert default["threshold"] == 50_000 and default["frozen"] > 0
    tuned = gunicorn("testproject.apps_server:echo", env={"CD_GC_THRESHOLD": "12345"})
    assert httpx.get(f"{tuned.url}/gc").json()["threshold"] == 12345


def wait_for_line(path):
    wait_for(lambda: path.exists() and path.read_text().strip(), what="an access log line")
    return path.read_text().strip().splitlines()[-1]
