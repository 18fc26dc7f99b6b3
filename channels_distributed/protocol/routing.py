"""The distributor's route table: ordered regexes -> key templates, sans-I/O.

Routes are tried in order with ``re.search`` (so a route may match anywhere in the path; anchor
with ``^`` to match from the start); the first hit wins and its key template is expanded with
``match.expand`` (``\\1``, ``\\g<name>``, or a plain string). A path that matches nothing, or an
expansion that is not a valid route key (only ``[A-Za-z0-9._-]``, fewer than 100 characters),
resolves to ``None``: the distributor answers 404 and never queues it, so a client can never
choose an arbitrary Redis key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from channels_distributed.exceptions import ConfigurationError

__all__ = ["Route", "RouteTable", "valid_route_key"]

MAX_KEY_LENGTH = 100
_KEY_RE = re.compile(r"[A-Za-z0-9._-]+")
_REF_RE = re.compile(r"\\(?:g<([^>]*)>|([0-9]+))")
_FIX = (
    "give routes as a dict or a list of (regex, key template) pairs, e.g. "
    "{'/api/([a-z-]+)': r'API-\\1', '/': 'ALL-WEBSITE-TRAFFIC'}"
)


def valid_route_key(key: object) -> bool:
    """True for a route key a worker can listen on: ``[A-Za-z0-9._-]``, under 100 characters."""
    return (isinstance(key, str) and 0 < len(key) < MAX_KEY_LENGTH
            and _KEY_RE.fullmatch(key) is not None)


@dataclass(frozen=True)
class Route:
    """One compiled route: a regex searched in the path, and a key template."""

    pattern: re.Pattern[str]
    template: str

    def __post_init__(self) -> None:
        # The template is split once into literals and group references: Python 3.11's
        # match.expand() re-parses its template on every call, a hot spot at the edge.
        object.__setattr__(self, "_parts", _split_template(self.template))

    def resolve(self, path: str) -> str | None:
        """The expanded key when the route matches ``path`` and expands to a valid key."""
        match = self.pattern.search(path)
        return None if match is None else self.expand(match)

    def expand(self, match: re.Match[str]) -> str | None:
        parts: tuple[str | tuple[int | str], ...] | None = self._parts  # type: ignore[attr-defined]
        if parts is None:
            try:
                key = match.expand(self.template)
            except (re.error, IndexError):  # pragma: no cover - templates are checked up front
                return None
        elif len(parts) == 1 and isinstance(parts[0], str):
            return parts[0]  # a plain key, validated when the route was compiled
        else:
            key = "".join(p if isinstance(p, str) else (match.group(p[0]) or "") for p in parts)
        return key if valid_route_key(key) else None


def _split_template(template: str) -> tuple[str | tuple[int | str], ...] | None:
    """Literals, and group references as 1-tuples; None if it needs re's own parser."""
    parts: list[str | tuple[int | str]] = []
    position = 0
    for ref in _REF_RE.finditer(template):
        parts.append(template[position:ref.start()])
        name, number = ref.groups()
        parts.append((int(number) if number else (int(name) if name.isdigit() else name),))
        position = ref.end()
    parts.append(template[position:])
    literals = [p for p in parts if isinstance(p, str)]
    if any("\\" in p for p in literals):
        return None  # other escapes: leave them to match.expand
    return tuple(p for p in parts if p != "")


def _check_template(pattern: re.Pattern[str], template: str) -> None:
    for name, number in _REF_RE.findall(template):
        ref = name or number
        ok = int(ref) <= pattern.groups if ref.isdigit() else ref in pattern.groupindex
        if not ok:
            raise ConfigurationError(
                "routes", f"key template {template!r} refers to group {ref!r}, which "
                f"{pattern.pattern!r} does not have", "refer only to groups of the route's regex")


def _compile(pattern: Any, template: Any) -> Route:
    if not isinstance(template, str):
        raise ConfigurationError("routes", f"key template for {pattern!r} must be a string, got "
                                 f"{template!r}", _FIX)
    if isinstance(pattern, re.Pattern):
        compiled = pattern
    elif isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError("routes", f"{pattern!r} is not a valid regex: {exc}",
                                     "fix the regular expression") from None
    else:
        raise ConfigurationError("routes", f"route pattern {pattern!r} is not a string", _FIX)
    _check_template(compiled, template)
    if not _REF_RE.search(template) and not valid_route_key(template):
        raise ConfigurationError(
            "routes", f"key {template!r} is not a valid route key",
            "use only letters, digits, '.', '_' and '-', fewer than 100 characters")
    return Route(compiled, template)


class RouteTable:
    """Ordered routes; ``resolve(path)`` -> route key or None."""

    def __init__(self, routes: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        if isinstance(routes, Mapping):
            pairs = list(routes.items())
        elif isinstance(routes, (str, bytes)) or not isinstance(routes, Iterable):
            raise ConfigurationError("routes", f"expected a dict, got {routes!r}", _FIX)
        else:
            pairs = [_pair(item) for item in routes]
        if not pairs:
            raise ConfigurationError("routes", "no routes given", _FIX)
        self.routes = tuple(_compile(pattern, template) for pattern, template in pairs)

    def resolve(self, path: str) -> str | None:
        """The key of the first route whose regex is found in ``path``; None means 404.

        Only the first matching route counts: if its expansion is invalid the answer is None,
        not a later route, so the table behaves the same whatever the client puts in the path.
        """
        for route in self.routes:
            match = route.pattern.search(path)
            if match is not None:
                return route.expand(match)
        return None

    def __len__(self) -> int:
        return len(self.routes)


def _pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    raise ConfigurationError("routes", f"cannot read route {item!r}", _FIX)
