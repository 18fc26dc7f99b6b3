"""What a trusted front end tells us: the PROXY protocol (v1/v2) and forwarded headers.

* PROXY protocol: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
* ``secure_scheme_headers`` / ``forwarded_allow_ips``: gunicorn's semantics -- from a trusted peer,
  a listed header with its listed value makes the scheme https; listed headers that disagree
  are a bad request; ``X-Forwarded-For`` names the client.
"""

from __future__ import annotations

import ipaddress
import socket

from channels_distributed.conf.server import AddressFilter, ServerConfig

__all__ = ["NEED_MORE", "BadProxy", "forwarded_client", "parse_proxy_header", "secure_scheme"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (section 2.1)
NEED_MORE = object()

Address = tuple[str, int] | None


class BadProxy(Exception):
    """A malformed PROXY protocol header (answered with 400 and close)."""


def parse_proxy_header(data: bytes, mode: str) -> object | tuple[int, Address, Address]:
    """Parse a PROXY header at the start of ``data``.

    Returns ``NEED_MORE``, or ``(consumed, client, server)``; ``consumed == 0`` means ``data`` does
    not start with a PROXY header (plain HTTP is allowed alongside, as in gunicorn).
    """
    if mode in ("v1", "auto") and data[:6] == V1_PREFIX[: len(data[:6])]:
        if len(data) < 6:
            return NEED_MORE
        return _parse_v1(data)
    if mode in ("v2", "auto") and data[:12] == V2_SIGNATURE[: len(data[:12])]:
        if len(data) < 16:
            return NEED_MORE
        return _parse_v2(data)
    return (0, None, None)


def _parse_v1(data: bytes) -> object | tuple[int, Address, Address]:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise BadProxy("PROXY v1 line longer than 107 bytes")
        return NEED_MORE
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return (end + 2, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise BadProxy(f"malformed PROXY v1 line {data[:end]!r}")
    family = socket.AF_INET if parts[1] == "TCP4" else socket.AF_INET6
    client = (_address(parts[2], family), _port(parts[4]))
    server = (_address(parts[3], family), _port(parts[5]))
    return (end + 2, client, server)


def _address(text: str, family: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise BadProxy(f"invalid address {text!r} in PROXY line") from None
    if (address.version == 4) != (family == socket.AF_INET):
        raise BadProxy(f"address {text!r} does not match the PROXY protocol family")
    return str(address)


def _port(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise BadProxy(f"invalid port {text!r} in PROXY line")
    return int(text)


def _parse_v2(data: bytes) -> object | tuple[int, Address, Address]:
    if data[:12] != V2_SIGNATURE:
        raise BadProxy("malformed PROXY v2 signature")
    version_command, family = data[12], data[13]
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise BadProxy(f"unsupported PROXY v2 version/command byte 0x{version_command:02x}")
    length = int.from_bytes(data[14:16], "big")
    if len(data) < 16 + length:
        return NEED_MORE
    body = data[16 : 16 + length]
    consumed = 16 + length
    if version_command & 0x0F == 0 or family >> 4 not in (1, 2):  # LOCAL, or AF_UNSPEC/AF_UNIX
        return (consumed, None, None)
    size = 4 if family >> 4 == 1 else 16
    if len(body) < 2 * size + 4:
        raise BadProxy("PROXY v2 address block too short")
    src = str(ipaddress.ip_address(body[:size]))
    dst = str(ipaddress.ip_address(body[size : 2 * size]))
    ports = body[2 * size : 2 * size + 4]
    return (
        consumed,
        (src, int.from_bytes(ports[:2], "big")),
        (dst, int.from_bytes(ports[2:], "big")),
    )


class InvalidSchemeHeaders(Exception):
    """Listed scheme headers disagree (gunicorn's ``InvalidSchemeHeaders``)."""


def secure_scheme(headers: list[tuple[bytes, bytes]], config: ServerConfig) -> bool | None:
    """True/False if a listed scheme header was sent, None if none was; raise on disagreement."""
    verdict: bool | None = None
    listed = dict(config.secure_scheme_headers)
    for name, value in headers:
        expected = listed.get(name)
        if expected is None:
            continue
        secure = value.strip() == expected
        if verdict is not None and verdict != secure:
            raise InvalidSchemeHeaders("contradictory scheme headers")
        verdict = secure
    return verdict


def forwarded_client(x_forwarded_for: bytes, allow: AddressFilter) -> str | None:
    """The client named by ``X-Forwarded-For``: the right-most entry that is not a trusted proxy."""
    hosts = [part.strip() for part in x_forwarded_for.decode("latin-1").split(",") if part.strip()]
    for host in reversed(hosts):
        if not allow.allows(host) or allow.allow_all:
            return host
    return hosts[0] if hosts else None
