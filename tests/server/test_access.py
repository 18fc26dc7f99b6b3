"""gunicorn's access log, statsd request metrics and --max-requests under the ASGIWorker, with a
real master: alike on gunicorn 23.0 (the floors session) and the newest release."""

from __future__ import annotations

import socket
import threading
from collections import Counter

import httpx
import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.instrument.statsd import Statsd
from gunicorn_helpers import Reader, connect, exchange, request
from helpers import wait_for
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from channels_distributed.gunicorn import access_logged

FORMAT = "%(r)s %(s)s %(b)s"


@pytest.mark.core
def test_access_line_for_each_request_error_answer_and_handshake(gunicorn, tmp_path):
    # gunicorn 23.0-25.1 have no access_log_enabled: the worker wrote no line at all there, and
    # on any release none for its own error answers or for WebSocket handshakes.
    access = tmp_path / "access.log"
    server = gunicorn("testproject.apps_server:echo", "--access-logfile", str(access),
                      "--access-logformat", FORMAT, "--limit-request-line", "100")
    assert httpx.get(f"{server.url}/status?201").status_code == 201
    assert request(server.port, b"GET /no-host?a=1 HTTP/1.1\r\n\r\n")[0].status == 400
    assert request(server.port, b"GET /" + b"x" * 200 + b" HTTP/1.1\r\n\r\n")[0].status == 414
    assert exchange(server.port, b"\x01\x02\r\n\r\n").startswith(b"HTTP/1.1 400")  # no line
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws/echo", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
    with pytest.raises(InvalidStatus):
        ws_connect(f"ws://127.0.0.1:{server.port}/ws/deny", open_timeout=10)
    no_key = (b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert request(server.port, no_key)[0].status == 400
    lines = _lines(access, 6)
    assert lines[:5] == [
        "GET /status?201 HTTP/1.1 201 4",
        f"GET /no-host?a=1 HTTP/1.1 400 {len(b'400 HTTP/1.1 request without a Host header')+1}",
        # The line as read, cut at the limit; its version was not read: "-".
        f"GET /{'x' * 99} - 414 {len(b'414 request line too long') + 1}",
        "GET /ws/echo HTTP/1.1 101 0",
        "GET /ws/deny HTTP/1.1 401 4",
    ]
    assert lines[5].startswith("GET /ws/echo HTTP/1.1 400 ")  # websockets' refusal, its text


def test_error_answers_to_bodies_pipelined_heads_and_slow_heads_are_one_line_each(
    gunicorn, tmp_path
):
    access = tmp_path / "access.log"
    server = gunicorn("testproject.apps_server:echo", "--access-logfile", str(access),
                      "--access-logformat", FORMAT, env={"CD_HEADER_TIMEOUT": "0.5"})
    # A chunked body that breaks while the application reads it: the server answers 400 in
    # the application's place; the request gets that line, not a second one when it ends.
    broken = (b"POST /count-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\nzz\r\n")
    assert exchange(server.port, broken).startswith(b"HTTP/1.1 400")
    # A bad head pipelined behind a good request: its 400 follows the first response.
    pipelined = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\n\r\n"
    with connect(server.port) as sock:
        sock.sendall(pipelined)
        reader = Reader(sock)
        assert [reader.read().status, reader.read().status] == [200, 400]
    # A head that does not arrive in time: 408.
    assert exchange(server.port, b"GET /slow HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408")
    assert httpx.get(f"{server.url}/after").status_code == 200
    wait_for(lambda: "/after" in access.read_text(), what="the line of the last request")
    assert [line.rsplit(" ", 1)[0] for line in access.read_text().splitlines()] == [
        "POST /count-body HTTP/1.1 400",
        "GET /first HTTP/1.1 200",
        "GET /second HTTP/1.1 400",
        "GET /slow HTTP/1.1 408",
        "GET /after HTTP/1.1 200",
    ]


@pytest.mark.core
def test_statsd_request_metrics_without_access_log(gunicorn):
    # gunicorn's statsd logger sends the request metrics from access(): the worker called it
    # only where an access log was written, and on gunicorn 23.0-25.1 never.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.5)
        port = statsd.getsockname()[1]
        server = gunicorn("testproject.apps_server:echo", "--statsd-host", f"127.0.0.1:{port}")
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/status?200").status_code == 200
            assert client.get("/status?404").status_code == 404
        seen: Counter[str] = Counter()

        def metrics_arrived() -> bool:
            try:
                datagram = statsd.recv(4096).decode()
            except TimeoutError:
                return False
            for metric in datagram.split("\n"):
                seen[metric.split(":")[0]] += 1
            return all(seen[name] >= count for name, count in expected.items())

        expected = {"gunicorn.requests": 2, "gunicorn.request.duration": 2,
                    "gunicorn.request.status.200": 1, "gunicorn.request.status.404": 1}
        wait_for(metrics_arrived, timeout=10, what="the request metrics")
    assert {name: seen[name] for name in expected} == expected


@pytest.mark.core
@pytest.mark.parametrize(("settings", "logged"), [
    ({}, False),
    ({"accesslog": "-"}, True),
    ({"logconfig_dict": {"version": 1, "disable_existing_loggers": False}}, True),
    ({"syslog": True}, True),
    ({"syslog": True, "disable_redirect_access_to_syslog": True}, False),
])
def test_access_logged_follows_gunicorn_settings(settings, logged):
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    log = Logger.__new__(Logger)  # the class decides, with cfg; no handlers set up
    assert access_logged(log, cfg) is logged
    # statsd's logger replaces access(): called for every request, access log or not.
    assert access_logged(Statsd.__new__(Statsd), cfg) is True


@pytest.mark.core
def test_last_response_before_max_requests_restart_closes_its_connection(gunicorn):
    # The worker counted a request after its response: the last response kept the connection
    # alive, and the client's next request on it met a closed connection (EOF or reset).
    server = gunicorn("testproject.apps_server:echo", "--max-requests", "2",
                      "--keep-alive", "30")
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        first = reader.read()
        assert first.status == 200 and first.header("connection") is None
        sock.sendall(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        last = reader.read()
        assert last.status == 200 and last.header("connection") == "close"
        assert reader.closed()
    server.wait_ready(count=2)
    with httpx.Client(base_url=server.url) as client:  # keep-alive across restarts
        pids = [client.get("/n").json()["pid"] for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_worker_accepts_no_connection_once_its_last_request_started(gunicorn):
    # A connection opened while the last request before a restart runs waits in the listen
    # backlog for the next worker; the old worker took it, and served it beyond --max-requests.
    server = gunicorn("testproject.apps_server:echo", "--max-requests", "2")
    first = httpx.get(f"{server.url}/n").json()["pid"]
    results: list[int] = []
    slow = threading.Thread(target=lambda: results.append(
        httpx.get(f"{server.url}/slow", headers={"X-Delay": "1"}, timeout=30).status_code))
    slow.start()
    wait_for(lambda: server.recorded("slow-start"), what="the last request to start")
    assert httpx.get(f"{server.url}/n", timeout=30).json()["pid"] != first
    slow.join(30)
    assert results == [200]


def _lines(path, count: int) -> list[str]:
    wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= count,
             what=f"{count} access log lines")
    return path.read_text().splitlines()
