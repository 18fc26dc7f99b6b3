"""Route overrides: the document every edge reads from Redis, checked, sans-I/O.

The routes of the settings give each connection a route key. An override, stored in Redis under
``<prefix>:routes`` (``keys.DistKeys.routes``) so that every edge applies the same ones, changes
where the requests of one route key go, without a restart:

``split``   the key's new requests spread over several keys by weight (``api=95,api-v2=5``;
            the key itself may keep a share); ``weights.SmoothWeighted`` picks
``switch``  all its new requests go to another key; those already queued stay and are served
``drain``   no new request is queued on the key, and those queued there move to the key it is
            drained into; with no such key, new requests are answered 503 and queued ones end
            503 (both with ``Retry-After``)

The document (JSON)::

    {"version": 7, "by": "ops@host", "at": 1765000000.5,
     "overrides": {"api": {"split": {"api": 95, "api-v2": 5}, "by": "...", "at": ...},
                   "old": {"switch": "new", ...}, "legacy": {"drain": null, ...}}}

Every write raises ``version`` by one (``routes/store.py`` writes it only over the document it
read, so two operators never overwrite each other unseen). What an override sends to a key with
an override of its own is routed on by that one (``api`` switched to ``api-v2``, drained into
``api-v3``, lands on ``api-v3``), so an override never has to be rewritten when the next one
comes; a cycle, or a chain longer than ``MAX_HOPS``, is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .routing import valid_route_key
from .weights import SmoothWeighted, check_split, parse_split, split_text

__all__ = ["KINDS", "MAX_HOPS", "MAX_OVERRIDES", "Override", "OverrideError", "Picker",
           "RouteOverrides", "check_graph", "new_override", "parse_document"]

KINDS = ("split", "switch", "drain")
MAX_HOPS = 4
MAX_OVERRIDES = 1000
MAX_DOCUMENT = 1 << 20  # bytes: a document this large was not written by the command
_OVERRIDE_FIELDS = frozenset({*KINDS, "by", "at"})
_DOCUMENT_FIELDS = frozenset({"version", "overrides", "by", "at"})


class OverrideError(ValueError):
    """An override, or a document of them, that the edges cannot apply: the message says why."""


@dataclass(frozen=True)
class Override:
    """One route key's override: a ``kind`` of ``KINDS`` and its argument."""

    kind: str
    weights: Mapping[str, int] = field(default_factory=dict)  # split
    into: str | None = None  # switch: the key; drain: the key, or None (503)
    by: str = ""
    at: float = 0.0

    def targets(self) -> tuple[str, ...]:
        return tuple(self.weights) if self.kind == "split" else (
            (self.into,) if self.into is not None else ())

    def describe(self) -> str:
        if self.kind == "split":
            return f"split {split_text(self.weights)}"
        if self.kind == "switch":
            return f"switch to {self.into}"
        return f"drain into {self.into}" if self.into else "drain (503)"

    def as_json(self) -> dict[str, Any]:
        value: Any = dict(self.weights) if self.kind == "split" else self.into
        return {self.kind: value, "by": self.by, "at": self.at}


@dataclass(frozen=True)
class RouteOverrides:
    """The overrides in force, and which write of them this is."""

    version: int = 0
    overrides: Mapping[str, Override] = field(default_factory=dict)
    by: str = ""
    at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "by": self.by, "at": self.at,
                "overrides": {key: o.as_json() for key, o in sorted(self.overrides.items())}}

    def dumps(self) -> str:
        return json.dumps(self.as_json(), separators=(",", ":"), sort_keys=True)

    def changed(self, key: str, override: Override | None, by: str, at: float
                ) -> RouteOverrides:
        """The next version: ``key``'s override set (or cleared, with None); checked."""
        overrides = dict(self.overrides)
        if override is None:
            overrides.pop(key, None)
        else:
            overrides[key] = replace(override, by=by, at=at)
        changed = RouteOverrides(self.version + 1, overrides, by, at)
        check_graph(changed.overrides)
        return changed

    def cleared(self, by: str, at: float) -> RouteOverrides:
        return RouteOverrides(self.version + 1, {}, by, at)


def new_override(key: str, kind: str, argument: str | None) -> Override:
    """The override an operator asks for on ``key`` (the command's words), checked alone."""
    if not valid_route_key(key):
        raise OverrideError(f"{key!r} is not a valid route key")
    if kind == "split":
        try:
            return _checked(key, Override("split", weights=parse_split(argument or "")))
        except ValueError as exc:
            raise OverrideError(str(exc)) from None
    if kind not in KINDS:
        raise OverrideError(f"unknown override {kind!r}: one of {', '.join(KINDS)}")
    return _checked(key, Override(kind, into=argument or None))


def _checked(key: str, override: Override) -> Override:
    if override.kind != "split":
        into = override.into
        if override.kind == "switch" and into is None:
            raise OverrideError(f"switch {key}: the key to switch to is missing")
        if into is not None and not valid_route_key(into):
            raise OverrideError(f"{into!r} is not a valid route key")
        if into == key:
            raise OverrideError(f"{override.kind} {key} into itself changes nothing")
    return override


def parse_document(raw: bytes | str | None) -> RouteOverrides:
    """The document as stored (None: no override was ever written); OverrideError if an edge
    must not apply it."""
    if raw is None:
        return RouteOverrides()
    if len(raw) > MAX_DOCUMENT:
        raise OverrideError(f"the document is {len(raw)} bytes, over {MAX_DOCUMENT}")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OverrideError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OverrideError("expected a JSON object")
    unknown = set(document) - _DOCUMENT_FIELDS
    if unknown:
        raise OverrideError(f"unknown field(s) {', '.join(sorted(unknown))}")
    version, by, at = document.get("version"), document.get("by", ""), document.get("at", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise OverrideError(f"version must be a whole number from 0, got {version!r}")
    entries = document.get("overrides", {})
    if not isinstance(entries, dict):
        raise OverrideError("overrides must be an object: route key -> override")
    if len(entries) > MAX_OVERRIDES:
        raise OverrideError(f"{len(entries)} overrides, over {MAX_OVERRIDES}")
    overrides = {key: _override(key, value) for key, value in entries.items()}
    check_graph(overrides)
    return RouteOverrides(version, overrides, _text(by, "by"), _number(at, "at"))


def _override(key: object, value: object) -> Override:
    if not isinstance(key, str) or not valid_route_key(key):
        raise OverrideError(f"{key!r} is not a valid route key")
    if not isinstance(value, dict):
        raise OverrideError(f"the override of {key!r} must be an object, got {value!r}")
    unknown = set(value) - _OVERRIDE_FIELDS
    kinds = [kind for kind in KINDS if kind in value]
    if unknown or len(kinds) != 1:
        raise OverrideError(f"the override of {key!r} must hold exactly one of "
                            f"{', '.join(KINDS)} (and by, at), got {sorted(value)}")
    kind = kinds[0]
    argument = value[kind]
    by, at = _text(value.get("by", ""), "by"), _number(value.get("at", 0), "at")
    if kind == "split":
        if not isinstance(argument, dict):
            raise OverrideError(f"split {key}: expected an object key -> weight")
        try:
            return Override("split", weights=check_split(argument), by=by, at=at)
        except ValueError as exc:
            raise OverrideError(f"split {key}: {exc}") from None
    if argument is not None and not isinstance(argument, str):
        raise OverrideError(f"{kind} {key}: expected a route key, got {argument!r}")
    return _checked(key, Override(kind, into=argument, by=by, at=at))


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise OverrideError(f"{name} must be a string, got {value!r}")
    return value[:200]


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OverrideError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_graph(overrides: Mapping[str, Override]) -> None:
    """Refuse a cycle, or a chain of more than ``MAX_HOPS`` overrides (a split's share kept on
    its own key ends there). Each key's depth is found once: a large document stays cheap."""
    depths: dict[str, int] = {}
    for start in overrides:
        _depth(overrides, start, depths, [])


def _depth(overrides: Mapping[str, Override], key: str, depths: dict[str, int],
           path: list[str]) -> int:
    known = depths.get(key)
    if known is not None:
        return known
    override = overrides.get(key)
    if override is None:
        return 0
    if key in path:
        raise OverrideError(f"{' -> '.join([*path[path.index(key):], key])}: a cycle")
    path.append(key)
    depth = 1 + max((_depth(overrides, target, depths, path)
                     for target in override.targets() if target != key), default=0)
    path.pop()
    if depth > MAX_HOPS:
        raise OverrideError(f"{key}: a chain of more than {MAX_HOPS} overrides from it")
    depths[key] = depth
    return depth


class Picker:
    """Where a route key's new requests go under a set of overrides, in one edge (the smooth
    weighted round-robin of each split keeps its place between picks)."""

    __slots__ = ("_overrides", "_rounds")

    def __init__(self, overrides: Mapping[str, Override]) -> None:
        self._overrides = overrides
        self._rounds = {key: SmoothWeighted(o.weights)
                        for key, o in overrides.items() if o.kind == "split"}

    def pick(self, key: str) -> str:
        """The key a new request of ``key`` is queued on (a drained key with nowhere to go:
        itself, and the edge refuses it)."""
        for _ in range(MAX_HOPS):
            override = self._overrides.get(key)
            if override is None:
                return key
            target = self._rounds[key].pick() if override.kind == "split" else override.into
            if target is None or target == key:
                return key
            key = target
        return key
