"""The distributor <-> worker protocol: message types and their encoding, sans-I/O.

A forwarded connection goes like this (docs/design.rst, "The forwarding protocol"):

1. distributor -> route queue (``keys.DistKeys.queue``): a ``connect`` map (connection id, the
   wire scope, the distributor's inbox, a wall-clock deadline, the first body chunk if small);
2. worker -> distributor inbox: ``cd.accept`` (worker id and inbox), usually in the same entry as
   the first response events;
3. both ways, tagged with the connection id: batches of ASGI 3 events, plus ``cd.ack`` (flow
   control credit: the peer consumed ``n`` data events);
4. worker -> distributor: ``cd.close`` when the application returns (``error`` if it raised);
   or, instead of 2-4, ``cd.expired`` when the worker took the request too late to run it.

Inbox entries use the channel layer's entry format (``codec.encode_entry``) with the connection
id as the target, so the layer's ``Reader`` dispatches them; the payload is a msgpack list of
event maps. Bytes stay bytes.

Since protocol version 2, the entries of one direction of one connection are numbered 1, 2, 3...
(the number leads the payload's list), so a receiver sees at once when Redis lost one (evicted it)
instead of delivering a short body as if it were whole; entries outside that stream (``cd.reset``,
``cd.expired``, ``cd.probe``, ``cd.probed``) carry no number. A receiver that has heard nothing
for a while asks the other side how many entries it sent (``cd.probe``, itself saying how many it
sent); each count travels behind the entries it counts, so a count above what arrived means the
tail was lost, on either side.

Versions: a ``connect`` request carries the edge's protocol version, and a worker serves every
version from ``MIN_VERSION`` to its own, speaking the edge's (a version 1 edge gets unnumbered
entries). It refuses a newer one with an error that names both versions, and tells the edge the
request will never run (``cd.expired``: the client gets 503). So a rolling upgrade updates the
workers first, then the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from channels_distributed.exceptions import ProtocolError
from channels_distributed.protocol.packing import pack

__all__ = [
    "ACCEPT",
    "ACK",
    "CLOSE",
    "EXPIRED",
    "MIN_VERSION",
    "PROBE",
    "PROBED",
    "RESET",
    "VERSION",
    "Connect",
    "VersionMismatch",
    "decode_connect",
    "decode_events",
    "encode_connect",
    "encode_events",
    "is_data",
    "pack_connect",
    "scope_from_wire",
    "split_body",
    "wire_scope",
]

#: The protocol version this release speaks, and the oldest edge version its workers serve.
VERSION = 2
MIN_VERSION = 1
#: Lifetime of a given-up mark (set only for requests a worker took but had not answered at
#: their deadline: rare). Longer than any deadline.
STATE_TTL_MS = 120_000
ACCEPT = "cd.accept"
ACK = "cd.ack"
CLOSE = "cd.close"
#: Distributor -> worker: that connection is gone on the edge (its client left before the
#: worker's accept arrived); the application is told the client disconnected.
RESET = "cd.reset"
#: Worker -> distributor: the request reached the worker after its deadline (or after the
#: distributor gave it up) and was not run, nor will it ever be; the distributor answers as if
#: no worker had taken it (503), at once instead of waiting for an accept that never comes.
EXPIRED = "cd.expired"
#: Either way: how many numbered entries have you sent on this connection? (``inbox``: where to
#: answer; ``sent``: how many the prober sent, which the other side checks the same way).
#: Answered with ``cd.probed`` (``sent``), or with ``cd.reset`` by a process that no longer has
#: the connection.
PROBE = "cd.probe"
PROBED = "cd.probed"


class VersionMismatch(ProtocolError):
    """A ``connect`` request of a protocol version this worker does not speak."""

    def __init__(self, version: object, reply: str | None, conn: str | None) -> None:
        super().__init__(
            f"connect request has protocol version {version!r}, this worker speaks versions "
            f"{MIN_VERSION} to {VERSION}; upgrade the workers before the edges (a worker "
            "serves older edges, never newer ones)")
        self.version = version
        self.reply = reply  # where to tell the edge the request will not run, when readable
        self.conn = conn

#: Events that carry payload and count against the flow-control window.
DATA_EVENTS = frozenset(
    {"http.request", "http.response.body", "websocket.receive", "websocket.send"})
#: Scope keys forwarded to the worker; ``state`` and ``extensions`` belong to the edge server.
SCOPE_KEYS = ("type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
              "query_string", "root_path", "headers", "client", "server", "subprotocols")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(slots=True)  # not frozen: a frozen init costs a microsecond per request
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
    version: int = VERSION  # the edge's protocol version: the worker speaks it back
    queued_ms: int = 0  # wall clock when the edge queued it (0: not stamped, an older edge)


def wire_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The forwardable part of an ASGI scope (``state``/``extensions`` are dropped).

    Tuples and lists both pack as msgpack arrays, so headers, client and server need no copy.
    """
    return {key: scope[key] for key in SCOPE_KEYS if key in scope}


# A WebSocket's header names, the few scope strings every request repeats and the edges'
# addresses, shared by the WebSockets that carry them instead of decoded anew for each: a
# WebSocket's request lives as long as it stays open, and thousands of idle ones would each keep
# copies. (An HTTP request's lives for a moment: sharing would only cost it time.) Bounded
# (emptied when full), as the server's cache of field names is, and holding short values only (a
# client sending long made-up names must not grow it by more than 1024 x 64 bytes).
_SHARED: dict[Any, Any] = {}
_SHARED_LIMIT = 1024
_SHARED_LONGEST = 64
_SHARED_KEYS = ("type", "http_version", "scheme")


def _shared(value: Any) -> Any:
    kept = _SHARED.get(value)
    if kept is None:
        if len(value) > _SHARED_LONGEST:
            return value
        if len(_SHARED) >= _SHARED_LIMIT:
            _SHARED.clear()
        kept = _SHARED[value] = value
    return kept


def scope_from_wire(wire: Mapping[str, Any]) -> dict[str, Any]:
    scope = dict(wire)
    for key in ("client", "server"):
        value = scope.get(key)
        if value is not None and type(value) is not tuple:
            scope[key] = tuple(value)
    # A list of (name, value) tuples: middleware (Starlette's MutableHeaders) appends to it.
    if scope.get("type") != "websocket":
        scope["headers"] = [(name, value) for name, value in scope.get("headers", ())]
    else:
        for key in _SHARED_KEYS:
            if key in scope:
                scope[key] = _shared(scope[key])
        scope["headers"] = [(_shared(name), value) for name, value in scope.get("headers", ())]
    if "subprotocols" in scope:
        scope["subprotocols"] = list(scope["subprotocols"])
    scope.setdefault("asgi", {"version": "3.0", "spec_version": "2.3"})
    return scope


def encode_connect(connect: Connect) -> bytes:
    return pack_connect(connect.conn, connect.scope, connect.reply, connect.origin,
                        connect.deadline_ms, connect.idempotent, connect.body, connect.more_body,
                        version=connect.version, queued_ms=connect.queued_ms)


def pack_connect(conn: str, scope: Mapping[str, Any], reply: str, origin: str,
                 deadline_ms: int, idempotent: bool, body: bytes | None,
                 more_body: bool, *, version: int = VERSION, queued_ms: int = 0) -> bytes:
    """A ``connect`` request, packed straight from its fields (the edge's hot path).
    ``queued_ms`` (unix ms) tells ``channels-distributed status`` how long the oldest request
    of a queue has waited, and a worker's metrics how long a request waited to be taken
    (older workers ignore it)."""
    return pack({"t": "connect", "v": version, "c": conn, "s": wire_scope(scope), "r": reply,
                  "o": origin, "d": deadline_ms, "i": idempotent, "b": body, "m": more_body,
                  "q": queued_ms})


def _unpack(raw: bytes, what: str, use_list: bool = True) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False, use_list=use_list)
    except Exception as exc:
        raise ProtocolError(f"not a {what} ({len(raw)} bytes): {exc}") from None


def decode_connect(raw: bytes) -> Connect:
    """Decode a route queue entry; anything else (garbage, a foreign message) -> ProtocolError."""
    data = _unpack(raw, "connect request", use_list=False)  # arrays as tuples: fewer copies
    if not isinstance(data, dict) or data.get("t") != "connect":
        raise ProtocolError("route queue entry is not a connect request")
    conn, reply, origin = data.get("c"), data.get("r"), data.get("o")
    version = data.get("v")
    if type(version) is not int or not MIN_VERSION <= version <= VERSION:
        raise VersionMismatch(version, reply if type(reply) is str else None,
                              conn if type(conn) is str else None)
    scope, body, deadline = data.get("s"), data.get("b"), data.get("d")
    if (type(conn) is not str or type(reply) is not str or type(origin) is not str
            or type(deadline) is not int or not isinstance(scope, dict)
            or scope.get("type") not in ("http", "websocket")
            or type(scope.get("path")) is not str
            or not (body is None or type(body) is bytes)):
        raise ProtocolError("connect request has missing or mistyped fields")
    try:
        wire = scope_from_wire(scope)
    except (TypeError, ValueError):
        raise ProtocolError("connect request has a malformed scope") from None
    queued = data.get("q")
    if wire["type"] == "websocket":  # kept while it is open: see _SHARED
        reply, origin = _shared(reply), _shared(origin)
    return Connect(conn, wire, reply, origin, deadline, bool(data.get("i")), body,
                   bool(data.get("m")), version, queued if type(queued) is int else 0)


def encode_events(events: Iterable[Mapping[str, Any]], seq: int = 0) -> bytes:
    """An entry's payload: the events, led by the entry's number in its stream when ``seq``."""
    return pack([seq, *events] if seq else list(events))


def decode_events(payload: bytes) -> tuple[int, list[dict[str, Any]]]:
    """(the entry's number in its stream or 0 when it has none, its events)."""
    events = _unpack(payload, "event batch")
    if type(events) is not list:
        raise ProtocolError("event batch is not a list of typed events")
    seq = 0
    if events and type(events[0]) is int:
        seq = events[0]
        del events[0]
        if seq <= 0:
            raise ProtocolError(f"event batch has a bad number {seq}")
    for event in events:  # a loop, not all(genexpr): this runs for every inbox entry
        if type(event) is not dict or type(event.get("type")) is not str:
            raise ProtocolError("event batch is not a list of typed events")
    return seq, events


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
    return {"type": ACCEPT, "worker": worker, "inbox": inbox, "v": VERSION}


def ack_event(count: int) -> dict[str, Any]:
    return {"type": ACK, "n": count}


def close_event(error: bool) -> dict[str, Any]:
    return {"type": CLOSE, "error": error}
