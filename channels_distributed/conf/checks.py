"""The checks every configuration object makes of its settings: one place, one wording.

Each raises ``ConfigurationError(setting, problem, fix)``: the setting, what was expected and
what arrived, and what to write instead. A ``bool`` is never taken for a number (``True`` is an
``int`` to Python, and ``capacity=True`` is a mistake, not a capacity of one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["checked", "choice", "positive"]


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


_NAMES = {int: "a whole number", float: "a number", str: "a string", bytes: "bytes",
          dict: "a dict", list: "a list", tuple: "a tuple"}
