"""Checks of a request head: field limits, trailers, the request target, framing and forwarding.

Pure functions over what httptools parsed, kept apart from the connection's I/O: a head the server
refuses raises ``Reject`` carrying the status to answer with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from channels_distributed.server import proxy

if TYPE_CHECKING:
    from channels_distributed.conf.server import ServerConfig

__all__ = [
    "CHECKED",
    "FIELD_NAMES",
    "FLAGGED",
    "FLAG_CONNECTION",
    "FLAG_FORWARDED",
    "FLAG_HOST",
    "FLAG_UPGRADE",
    "SINGLETONS",
    "Reject",
    "check_line",
    "field",
    "field_name",
    "forwarded",
    "framing",
    "target",
    "upgrade_kind",
]

# Headers that need a look after the head is parsed: one dict lookup per header, no regex.
FLAG_TE, FLAG_EXPECT, FLAG_FORWARDED, FLAG_CL, FLAG_UPGRADE = 1, 2, 4, 8, 16
FLAG_HOST, FLAG_CONTENT_TYPE, FLAG_CONNECTION = 32, 64, 128
# RFC 9110 section 5.3: fields that admit one value; a second one makes the request ambiguous.
SINGLETONS = FLAG_HOST | FLAG_CONTENT_TYPE
CHECKED = FLAG_TE | FLAG_EXPECT | FLAG_FORWARDED | FLAG_CL | FLAG_UPGRADE
FLAGGED = {
    b"transfer-encoding": FLAG_TE,
    b"expect": FLAG_EXPECT,
    b"x-forwarded-for": FLAG_FORWARDED,
    b"content-length": FLAG_CL,
    b"upgrade": FLAG_UPGRADE,
    b"host": FLAG_HOST,
    b"content-type": FLAG_CONTENT_TYPE,
    b"connection": FLAG_CONNECTION,
}
# RFC 9110 section 6.5.1: fields a trailer must not carry (routing, framing, authentication);
# the same set gunicorn refuses.
_FORBIDDEN_TRAILERS = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"trailer", b"authorization", b"te"}
)


# Request field names and request targets already seen, as response.py keeps response fields:
# clients send the same few names (and ask for the same paths) again and again, so each distinct
# one is lowercased (or split and decoded) once instead of per request. Exact bytes only, short
# ones only, and both are emptied when full (never replaced: http.py holds FIELD_NAMES), so their
# memory stays bounded whatever clients send.
FIELD_NAMES: dict[bytes, bytes] = {}  # a name without an underscore -> the name lowercased
_TARGETS: dict[bytes, tuple[str, bytes, bytes]] = {}  # an origin-form target -> target()
_KNOWN_LIMIT, _KNOWN_SIZE = 512, 256


class Reject(Exception):
    """A request the server refuses, with the HTTP status to answer (and, once the connection
    took it, the ``request`` the access log shows with the answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.request: Any = None


def check_line(config: ServerConfig, method: bytes, url: bytes) -> None:
    """Refuse a request line longer than ``limit_request_line`` (414)."""
    limit = config.limit_request_line
    if limit and len(url) + len(method) + 10 > limit:
        raise Reject(414, "request line too long")


def field(
    config: ServerConfig, count: int, name: bytes, value: bytes, in_head: bool
) -> tuple[bytes, bytes] | None:
    """Check one header (or trailer) field; return it to keep (name lowercased) or None to drop.

    ``HttpProtocol.on_header`` keeps a head field that is inside every limit, has no underscore
    and no trailing whitespace without calling here: a rule added here must be added there too.
    """
    kind = "header" if in_head else "trailer"
    if config.limit_request_fields and count >= config.limit_request_fields:
        raise Reject(431, f"too many {kind} fields")
    if config.limit_request_field_size and len(name) + len(value) + 4 > (
        config.limit_request_field_size  # the field line: name ": " value CRLF
    ):
        raise Reject(431, f"{kind} field {name[:64]!r} too large")
    if not in_head:
        # A trailer field of a chunked body: ASGI has no place for it, but some are refused.
        if name.lower() in _FORBIDDEN_TRAILERS:
            raise Reject(400, f"field {name[:64]!r} is not allowed in a trailer")
        return None
    # find(), not `in`: bytes.__contains__ first tries the argument as an integer and builds
    # (then drops) a TypeError for every bytes argument, several times the cost of the search.
    if name.find(b"_") >= 0 and config.header_map != "dangerous":
        # gunicorn's header_map: "Content_Length" must not pass for Content-Length downstream.
        if config.header_map == "refuse":
            raise Reject(400, f"header name {name[:64]!r} contains an underscore")
        return None
    if value[-1:] in (b" ", b"\t"):
        value = value.rstrip(b" \t")  # RFC 9110 5.5: trailing whitespace is not the value
    return name.lower(), value


def field_name(name: bytes) -> bytes:
    """A request field name (without an underscore: see ``field``) lowercased, remembered in
    ``FIELD_NAMES`` for the next request that sends it."""
    lowered = name.lower()
    if type(name) is bytes and len(name) <= _KNOWN_SIZE:
        if len(FIELD_NAMES) >= _KNOWN_LIMIT:
            FIELD_NAMES.clear()
        FIELD_NAMES[name] = lowered
    return lowered


def target(method: bytes, url: bytes) -> tuple[str, bytes, bytes]:
    """Split the request target into (decoded path, raw path, query string)."""
    known = _TARGETS.get(url)
    if known is not None:
        return known
    if url[:1] != b"/":  # absolute-form, authority-form (CONNECT) or asterisk-form (OPTIONS *)
        raw_path, query = _other_target(method, url)
        return _decoded(raw_path), raw_path, query
    raw_path, _, query = url.partition(b"?")
    raw_path = raw_path.partition(b"#")[0]
    query = query.partition(b"#")[0]
    split = (_decoded(raw_path), raw_path, query)
    if type(url) is bytes and len(url) <= _KNOWN_SIZE:  # origin-form: the method plays no part
        if len(_TARGETS) >= _KNOWN_LIMIT:
            _TARGETS.clear()
        _TARGETS[url] = split
    return split


def _decoded(raw_path: bytes) -> str:
    path = raw_path.decode("latin-1")
    return unquote(path) if raw_path.find(b"%") >= 0 else path


def _other_target(method: bytes, url: bytes) -> tuple[bytes, bytes]:
    if url == b"*":
        if method != b"OPTIONS":
            raise Reject(400, "the asterisk-form target is only for OPTIONS")
        return b"*", b""
    if method == b"CONNECT":
        return b"", b""  # authority-form: the target is in the Host header
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise Reject(400, "invalid request target") from None
    return parsed.path or b"/", parsed.query or b""


def upgrade_kind(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"upgrade":
            return value.strip().lower()
    return b""


def framing(headers: list[tuple[bytes, bytes]], version: str) -> tuple[bool, int | None]:
    """Framing and expectations: (100-continue expected, the Content-Length or None)."""
    expect_continue, length = False, None
    for name, value in headers:
        if name == b"transfer-encoding" and version == "1.0":
            # RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 is a smuggling vector.
            raise Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
        if name == b"expect":
            if value.strip().lower() != b"100-continue":
                raise Reject(417, f"unsupported expectation {value[:64]!r}")
            expect_continue = version == "1.1"
        elif name == b"content-length":
            length = int(value)
    return expect_continue, length


def forwarded(
    headers: list[tuple[bytes, bytes]], config: ServerConfig, scope: dict[str, Any]
) -> None:
    """Apply the scheme and client a trusted proxy forwarded to ``scope``."""
    try:
        secure = proxy.secure_scheme(headers, config)
    except proxy.InvalidSchemeHeaders as exc:
        raise Reject(400, str(exc)) from None
    if secure is not None:
        scope["scheme"] = "https" if secure else "http"
    for name, value in headers:
        if name == b"x-forwarded-for":
            host = proxy.forwarded_client(value, config.forwarded_allow)
            if host:
                scope["client"] = (host, 0)
