"""The checks every configuration object makes of its settings (one place, one wording), and
where every default is read from (``field_defaults``: the dataclass's fields, written once).

Each check raises ``ConfigurationError(setting, problem, fix)``: the setting, what was expected and
what arrived, and what to write instead. A ``bool`` is never taken for a number (``True`` is an
``int`` to Python, and ``capacity=True`` is a mistake, not a capacity of one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["checked", "choice", "field_defaults", "known_settings", "positive"]


def checked(setting: str, value: Any, kind: type | tuple[type, ...], fix: str) -> Any:
    """``value`` if it is an instance of ``kind``; else ConfigurationError."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
        raise ConfigurationError(setting, f"expected {expected}, got {value!r}", fix)
    return value


def positive(setting: str, value: Any, fix: str | None = None, *, integer: bool = False,
             zero: bool = False, name: str = "") -> Any:
    """``value`` if it is a number above zero; else ConfigurationError.

    ``integer``: a whole number; ``zero``: zero is allowed too (a limit that 0 turns off);
    ``name``: what the message calls the value, when it is a part of ``setting``.
    """
    kind = "whole number" if integer else "number"
    least = f"zero or a positive {kind}" if zero else f"a positive {kind}"
    if fix is None:
        fix = f"set {setting} to {'0 or more' if zero else 'a number above zero'}"
    if (isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
            or value < 0 or (value == 0 and not zero)):
        problem = f"expected {least}, got {value!r}"
        raise ConfigurationError(setting, f"{name}: {problem}" if name else problem, fix)
    return value


def choice(setting: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``; else ConfigurationError listing them."""
    options = tuple(allowed)
    if value not in options:
        raise ConfigurationError(setting, f"unknown value {value!r}",
                                 f"use one of {', '.join(options)}")
    return str(value)


def field_defaults(config: type) -> dict[str, Any]:
    """The defaults of a configuration dataclass's fields, by name (fields without one left
    out): what command lines, adapters and keyword arguments take theirs from, so that each
    default is written once, in its field."""
    found: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        if item.default is not dataclasses.MISSING:
            found[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            found[item.name] = item.default_factory()
    return found


def known_settings(config: type, options: Mapping[str, Any], owner: str,
                   others: Iterable[str] = ()) -> dict[str, Any]:
    """``options`` if each names a field of ``config`` that has a default; else
    ConfigurationError naming the first unknown one and the settings there are (``others``:
    keyword arguments taken apart, such as where Redis is, listed with them)."""
    known = set(field_defaults(config))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(unknown[0], f"is not a setting of {owner}",
                                 f"the settings are {sorted(known | set(others))}")
    return dict(options)


_NAMES = {int: "a whole number", float: "a number", str: "a string", bytes: "bytes",
          dict: "a dict", list: "a list", tuple: "a tuple"}
