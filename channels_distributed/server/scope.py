"""The ASGI scope of an HTTP request, made from a template its connection keeps.

The fields every request of a connection shares (the addresses, the scheme, the root path) are
set once, in the connection's template, after its PROXY header if it has one; each request's
scope is a copy of it with that request's own fields set. A copy of a dict of fixed keys is
one block copy where a new dict of 13 fields is 13 insertions.
"""

from __future__ import annotations

from typing import Any

from channels_distributed.server import head

__all__ = ["ASGI_VERSION", "http_scope", "template"]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


def template(
    local: tuple[str, int] | None, client: tuple[str, int] | None, scheme: str, root_path: str
) -> dict[str, Any]:
    """A connection's fields of its requests' scopes, in the order of a scope's fields."""
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1",
        "server": local,
        "client": client,
        "scheme": scheme,
        "method": "GET",
        "root_path": root_path,
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "state": {},
    }


def http_scope(
    shared: dict[str, Any],
    version: str,
    method: bytes,
    url: bytes,
    headers: list[tuple[bytes, bytes]],
    state: dict[str, Any],
) -> dict[str, Any]:
    """The scope of one request: ``shared`` (a ``template``) with the request's own fields."""
    path, raw_path, query = head.target(method, url)
    scope = shared.copy()
    scope["http_version"] = version
    scope["method"] = method.decode("ascii")
    root = shared["root_path"]
    if root:
        scope["path"] = root + path
        scope["raw_path"] = root.encode() + raw_path
    else:
        scope["path"] = path
        scope["raw_path"] = raw_path
    scope["query_string"] = query
    scope["headers"] = headers
    scope["state"] = state.copy() if state else {}
    return scope
