"""Hostile input: slowloris, limits, smuggling shapes, idle connections. Each gets 4xx and close."""

from __future__ import annotations

import json
import time

import pytest
from gunicorn_helpers import Reader, connect, request
from helpers import wait_for


def test_slowloris_header_is_cut_at_deadline(echo_server):
    # CD_HEADER_TIMEOUT=1: a head trickled one header at a time is cut with 408, not waited on.
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        reader = Reader(sock)
        for index in range(100):  # up to ~10 s of trickling; the deadline is 1 s
            try:
                sock.sendall(b"X-Trickle-%d: y\r\n" % index)
            except (BrokenPipeError, ConnectionResetError):
                break
            if _readable(sock, 0.1):
                break
        else:
            pytest.fail("the server kept reading a trickled header for 10 s")
        assert reader.read().status == 408
        assert reader.closed()


def _readable(sock, timeout):
    import select

    return bool(select.select([sock], [], [], timeout)[0])


def test_idle_keep_alive_connection_is_closed(echo_server):
    with connect(echo_server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        assert reader.read().status == 200
        started = time.monotonic()
        assert reader.closed()  # --keep-alive 1
        assert time.monotonic() - started < 8


def test_silent_connection_is_closed(echo_server):
    with connect(echo_server.port) as sock:
        assert Reader(sock).read_to_close() in (b"",)


@pytest.mark.core
def test_request_line_too_long_is_414(echo_server):
    response, closed = request(
        echo_server.port, b"GET /" + b"a" * 400 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert response.status == 414
    assert closed


@pytest.mark.core
def test_too_many_headers_is_431(echo_server):
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(30))
    response, closed = request(echo_server.port, b"GET / HTTP/1.1\r\n" + headers + b"\r\n")
    assert response.status == 431
    assert closed


def test_header_field_too_large_is_431(echo_server):
    response, closed = request(
        echo_server.port, b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 500 + b"\r\n\r\n"
    )
    assert response.status == 431
    assert closed


_CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"


def test_too_many_trailer_fields_is_431(echo_server):
    # --limit-request-fields 20 bounds the trailer section as it bounds the head.
    trailers = b"".join(b"X-T%d: v\r\n" % i for i in range(30))
    response, closed = request(echo_server.port, _CHUNKED + trailers + b"\r\n")
    assert response.status == 431
    assert closed
    # Within the limit, trailers are read (and dropped: ASGI has no place for them).
    response, _ = request(echo_server.port, _CHUNKED + b"X-T: v\r\n\r\n")
    assert (response.status, json.loads(response.body)["body"]) == (200, "hello")


def test_trailer_field_too_large_is_431(echo_server):
    response, closed = request(echo_server.port, _CHUNKED + b"X-T: " + b"v" * 500 + b"\r\n\r\n")
    assert response.status == 431
    assert closed


def test_endless_trailer_is_cut_at_the_head_bound(echo_server):
    # A trailer field that never ends: the server stops reading it once the trailer section
    # outgrows what a request head may hold, instead of buffering it without bound.
    with connect(echo_server.port) as sock:
        sock.sendall(_CHUNKED + b"X-Endless: ")
        for _ in range(256):  # up to 1 MiB; the bound here is under 5 KiB
            if _readable(sock, 0.01):
                break
            try:
                sock.sendall(b"v" * 4096)
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("the server read a 1 MiB trailer field without answering")
        reader = Reader(sock)
        assert reader.read().status == 431
        assert reader.closed()


SMUGGLING = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "duplicate_cl": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Content-Length: 6\r\n\r\nhello!",
    "cl_list": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
    "cl_sign": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    "te_not_chunked_last": b"POST / HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "te_unknown": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "te_space_before_colon": b"POST / HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te_in_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare_cr_in_value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    "ctl_in_value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    "del_in_value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk_lf_only": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\nhello\n0\n\n",
    "http2_version": b"GET / HTTP/2.0\r\n\r\n",
    "http09": b"GET /\r\n\r\n",
    "space_in_name": b"GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n",
    "bad_method": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.core
@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_shapes_are_rejected(echo_server, name):
    # Each HTTP/1.1 shape carries a Host: the 400 must come from the rule it tests.
    with connect(echo_server.port) as sock:
        sock.sendall(SMUGGLING[name])
        reader = Reader(sock)
        response = reader.read()
        assert response.status == 400, response
        assert b"without a Host" not in response.body
        assert response.header("connection") == "close"
        assert reader.closed()


def test_http11_request_without_host_is_400(echo_server):
    # RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    response, closed = request(echo_server.port, b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n")
    assert response.status == 400
    assert b"Host" in response.body
    assert closed
    # HTTP/1.0 has no such rule.
    response, _ = request(echo_server.port, b"GET /ten HTTP/1.0\r\n\r\n")
    assert response.status == 200


def test_smuggled_second_request_is_never_served(echo_server):
    # A front end using Content-Length would forward all of this as one request; we refuse it
    # whole instead of serving the "GET /admin" hidden in the chunked body.
    payload = (
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with connect(echo_server.port) as sock:
        sock.sendall(payload)
        data = Reader(sock).read_to_close()
    assert data.count(b"HTTP/1.1 ") == 1
    assert b"/admin" not in data


def test_broken_body_of_a_queued_request_never_starts(echo_server):
    # Request 2 waits behind request 1 and its chunked body is malformed: it must not reach the
    # application with a partial body; the connection answers request 1, then 400 and close.
    with connect(echo_server.port) as sock:
        sock.sendall(
            b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Delay: 0.2\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\nzz\r\n"
        )
        reader = Reader(sock)
        first = reader.read()
        assert (first.status, first.body) == (200, b"slow done")
        second = reader.read()
        assert second.status == 400
        assert second.header("connection") == "close"
        assert reader.closed()


def test_slowloris_body_is_cut_at_deadline(edge_server):
    # CD_BODY_TIMEOUT=0.6 (conftest.BODY_TIMEOUT): a body that stops arriving gets 408 and
    # close, and the application gets http.disconnect instead of waiting for the rest forever.
    with connect(edge_server.port) as sock:
        sock.sendall(b"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nx")
        reader = Reader(sock)
        response = reader.read()
        assert response.status == 408
        assert response.header("connection") == "close"
        assert reader.closed()
    wait_for(lambda: "disconnect" in edge_server.recorded("reader"), what="http.disconnect")


def test_body_trickling_within_the_deadline_is_read(edge_server):
    # Each byte follows the last well within CD_BODY_TIMEOUT=0.6, though the whole body takes
    # 1.2 s, longer than the timeout even when it fires a tick late.
    with connect(edge_server.port) as sock:
        sock.sendall(b"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
        for _ in range(12):
            time.sleep(0.1)
            sock.sendall(b"x")
        response = Reader(sock).read()
        assert (response.status, response.body) == (200, b"read")


def test_body_left_unread_by_the_application_is_not_timed_out(edge_server):
    # The application leaves the body unread for 1.2 s (> CD_BODY_TIMEOUT=0.6 and a tick):
    # reading is paused then, the client is not late, and the rest of the body is read once the
    # application reads.
    size = 1_000_000
    with connect(edge_server.port) as sock:
        sock.sendall(
            b"POST /late-reader HTTP/1.1\r\nHost: x\r\nX-Delay: 1.2\r\nContent-Length: %d\r\n\r\n"
            % size
            + b"x" * 100_000
        )
        wait_for(lambda: edge_server.recorded("late-reader"), what="the application to start")
        sock.sendall(b"x" * (size - 100_000))
        response = Reader(sock).read()
        assert (response.status, response.body) == (200, b"%d" % size)


def test_body_awaiting_100_continue_is_not_timed_out(edge_server):
    # The client waits for the 100 Continue, which goes out only when the application reads,
    # 1.2 s later (> CD_BODY_TIMEOUT=0.6 and a tick): the client is not late meanwhile.
    with connect(edge_server.port) as sock:
        sock.sendall(
            b"POST /late-reader HTTP/1.1\r\nHost: x\r\nX-Delay: 1.2\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.read().status == 100
        sock.sendall(b"hello")
        response = reader.read()
        assert (response.status, response.body) == (200, b"5")
