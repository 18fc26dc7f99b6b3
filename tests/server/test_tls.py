"""TLS through gunicorn's SSL context: the scheme, failed handshakes, silent clients."""

from __future__ import annotations

import socket
import struct
import subprocess

import httpx
import pytest
from gunicorn_helpers import ROOT, connect


@pytest.fixture
def certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return key, cert


def _tls_server(gunicorn, certificate, *args, env=None):
    key, cert = certificate
    return gunicorn(
        "testproject.apps_server:echo",
        "--keyfile",
        str(key),
        "--certfile",
        str(cert),
        *args,
        env=env,
    )


def test_ssl_through_gunicorn_context(gunicorn, certificate):
    server = _tls_server(gunicorn, certificate)
    info = httpx.get(f"https://127.0.0.1:{server.port}/tls", verify=False).json()
    assert info["scheme"] == "https"


def _plain_text(sock: socket.socket) -> None:
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not a ClientHello
        _read_to_close(sock)  # the server gives up on it


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST in the middle of the handshake


def _read_to_close(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:  # reset, or already closed by the test
        pass


@pytest.mark.parametrize("fail", [_plain_text, _reset], ids=["plain-text", "reset"])
def test_failed_handshakes_at_the_connection_limit_do_not_stop_accepting(
    gunicorn, certificate, fail
):
    # --worker-connections 2: two handshakes in progress pause accepting. When they fail, the
    # worker must accept again; it used to stay paused for good while its heartbeat went on.
    server = _tls_server(gunicorn, certificate, "--worker-connections", "2")
    for _ in range(3):
        socks = [connect(server.port) for _ in range(2)]  # both accepted, both handshaking
        for sock in socks:
            fail(sock)
    info = httpx.get(f"https://127.0.0.1:{server.port}/after", verify=False, timeout=10).json()
    assert info["path"] == "/after"


def test_silent_tls_client_is_cut_at_the_header_timeout(gunicorn, certificate):
    # A client that opens a connection and never starts the handshake is held for
    # CD_HEADER_TIMEOUT, as a plain-text one is, not for the 60 s TLS handshake default.
    server = _tls_server(gunicorn, certificate, env={"CD_HEADER_TIMEOUT": "1"})
    with connect(server.port, timeout=15) as sock:
        try:
            assert sock.recv(1) == b""
        except TimeoutError:
            pytest.fail("the server held a silent TLS connection for more than 15 s")
        except ConnectionResetError:
            pass
