"""The distributor <-> worker protocol: keys, message types and their encoding, sans-I/O.

A forwarded connection goes like this (DESIGN.md, "The distributor <-> worker protocol"):

1. distributor -> route queue ``<prefix>:{rt:<key>}:q``: a ``connect`` map (connection id, the
   wire scope, the distributor's inbox, a wall-clock deadline, the first body chunk if small);
2. worker -> distributor inbox: ``cd.accept`` (worker id and inbox), usually in the same entry as
   the first response events;
3. both ways, tagged with the connection id: batches of ASGI 3 events, plus ``cd.ack`` (flow
   control credit: the peer consumed ``n`` data events);
4. worker -> distributor: ``cd.close`` when the application returns (``error`` if it raised).

Inbox entries use the channel layer's entry format (``codec.encode_entry``) with the connection
id as the target, so the layer's ``Reader`` dispatches them; the payload is a msgpack list of
event maps. Bytes stay bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from channels_distributed.exceptions import ProtocolError

__all__ = [
    "ACCEPT",
    "ACK",
    "CLOSE",
    "VERSION",
    "Connect",
    "DistKeys",
    "decode_connect",
    "decode_events",
    "encode_connect",
    "encode_events",
    "is_data",
    "scope_from_wire",
    "split_body",
    "wire_scope",
]

VERSION = 1
ACCEPT = "cd.accept"
ACK = "cd.ack"
CLOSE = "cd.close"

#: Events that carry payload and count against the flow-control window.
DATA_EVENTS = frozenset(
    {"http.request", "http.response.body", "websocket.receive", "websocket.send"})
#: Scope keys forwarded to the worker; ``state`` and ``extensions`` belong to the edge server.
SCOPE_KEYS = ("type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
              "query_string", "root_path", "headers", "client", "server", "subprotocols")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class DistKeys:
    """Every Redis key (and presence channel) of the distributed protocol under one prefix.

    Keys of one route share the hash tag ``{rt:<key>}`` and keys of one process ``{p:<id>}``,
    so every multi-key command (``LMOVE`` queue -> processing list) touches one slot.
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def queue(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:q"

    def processing(self, route: str, worker: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:p:{worker}"

    def registry(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:w"

    def reap_lock(self, route: str) -> str:
        return f"{self.prefix}:{{rt:{route}}}:lock"

    def inbox(self, process: str) -> str:
        return f"{self.prefix}:{{p:{process}}}:in"

    def lease(self, process: str) -> str:
        return f"{self.prefix}:{{p:{process}}}:lease"

    def presence(self, process: str) -> str:
        return f"{self.prefix}:presence:{process}"


@dataclass(frozen=True)
class Connect:
    """A connection request waiting in a route queue."""

    conn: str
    scope: dict[str, Any]
    reply: str  # the distributor's inbox key
    origin: str  # the distributor's process id, for presence checks
    deadline_ms: int  # wall clock; a worker that takes it later drops it
    idempotent: bool = False
    body: bytes | None = None  # the first http.request body, when small
    more_body: bool = False


def wire_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The forwardable part of an ASGI scope (``state``/``extensions`` are dropped)."""
    wire = {key: scope[key] for key in SCOPE_KEYS if key in scope}
    if "headers" in wire:
        wire["headers"] = [[bytes(name), bytes(value)] for name, value in wire["headers"]]
    for key in ("client", "server"):
        if wire.get(key) is not None:
            wire[key] = list(wire[key])
    return wire


def scope_from_wire(wire: Mapping[str, Any]) -> dict[str, Any]:
    scope = dict(wire)
    for key in ("client", "server"):
        if scope.get(key) is not None:
            scope[key] = tuple(scope[key])
    scope["headers"] = [(name, value) for name, value in scope.get("headers", ())]
    scope.setdefault("asgi", {"version": "3.0", "spec_version": "2.3"})
    return scope


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def encode_connect(connect: Connect) -> bytes:
    return _pack({
        "t": "connect", "v": VERSION, "c": connect.conn, "s": wire_scope(connect.scope),
        "r": connect.reply, "o": connect.origin, "d": connect.deadline_ms,
        "i": connect.idempotent, "b": connect.body, "m": connect.more_body,
    })


def _unpack(raw: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError(f"not a {what} ({len(raw)} bytes): {exc}") from None


def decode_connect(raw: bytes) -> Connect:
    """Decode a route queue entry; anything else (garbage, a foreign message) -> ProtocolError."""
    data = _unpack(raw, "connect request")
    if not isinstance(data, dict) or data.get("t") != "connect":
        raise ProtocolError("route queue entry is not a connect request")
    if data.get("v") != VERSION:
        raise ProtocolError(f"connect request has protocol version {data.get('v')!r}, this "
                            f"worker speaks {VERSION}; run the same release everywhere")
    scope, body = data.get("s"), data.get("b")
    strings = all(isinstance(data.get(k), str) for k in ("c", "r", "o"))
    if (not strings or not isinstance(scope, dict) or not isinstance(data.get("d"), int)
            or scope.get("type") not in ("http", "websocket") or not isinstance(
                scope.get("path"), str) or not (body is None or isinstance(body, bytes))):
        raise ProtocolError("connect request has missing or mistyped fields")
    return Connect(conn=data["c"], scope=scope_from_wire(scope), reply=data["r"],
                   origin=data["o"], deadline_ms=data["d"], idempotent=bool(data.get("i")),
                   body=body, more_body=bool(data.get("m")))


def encode_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    return _pack(list(events))


def decode_events(payload: bytes) -> list[dict[str, Any]]:
    events = _unpack(payload, "event batch")
    if not isinstance(events, list) or not all(
            isinstance(e, dict) and isinstance(e.get("type"), str) for e in events):
        raise ProtocolError("event batch is not a list of typed events")
    return events


def is_data(event: Mapping[str, Any]) -> bool:
    return event["type"] in DATA_EVENTS


def split_body(event: dict[str, Any], max_chunk: int) -> list[dict[str, Any]]:
    """Split an ``http.*`` body event into events of at most ``max_chunk`` bytes, in order."""
    body = event.get("body", b"")
    if len(body) <= max_chunk:
        return [event]
    more = bool(event.get("more_body", False))
    view = memoryview(body)
    pieces = []
    for start in range(0, len(body), max_chunk):
        last = start + max_chunk >= len(body)
        pieces.append({"type": event["type"], "body": bytes(view[start:start + max_chunk]),
                       "more_body": more if last else True})
    return pieces


def accept_event(worker: str, inbox: str) -> dict[str, Any]:
    return {"type": ACCEPT, "worker": worker, "inbox": inbox}


def ack_event(count: int) -> dict[str, Any]:
    return {"type": ACK, "n": count}


def close_event(error: bool) -> dict[str, Any]:
    return {"type": CLOSE, "error": error}
