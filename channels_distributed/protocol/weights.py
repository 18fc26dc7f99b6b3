"""Weighted splits of a route key: their text form, and a smooth weighted round-robin, sans-I/O.

A split is written ``api=95,api-v2=5``: route keys with positive whole weights. The edge picks
among them with the smooth weighted round-robin (the one nginx uses for its upstreams): every
pick adds each key's weight to its credit, takes the key with the most credit (the first of
equals, in the order written) and takes the weights' total off that key. It is deterministic
and exact: in every run of ``total`` consecutive picks each key is picked exactly ``weight``
times, and the picks of one key are spread over the run instead of coming in a burst (95/5
sends the 5 one at a time, about 20 picks apart). A random choice would only approach the
shares, and a canary's first requests would come whenever chance had them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .routing import valid_route_key

__all__ = ["MAX_TARGETS", "MAX_WEIGHT", "SmoothWeighted", "check_split", "parse_split",
           "split_text"]

#: Bounds of a split: a typo (``api=95000000``) is refused instead of served as written.
MAX_TARGETS = 16
MAX_WEIGHT = 1_000_000

_KEY_HINT = "route keys are letters, digits, '.', '_' and '-', fewer than 100 characters"


def check_split(weights: Mapping[Any, Any]) -> dict[str, int]:
    """``weights`` as a split, or ValueError saying what is wrong with it."""
    if not weights:
        raise ValueError("a split needs at least one key=weight")
    if len(weights) > MAX_TARGETS:
        raise ValueError(f"a split has at most {MAX_TARGETS} keys, got {len(weights)}")
    checked: dict[str, int] = {}
    for key, weight in weights.items():
        if not valid_route_key(key):
            raise ValueError(f"{key!r} is not a valid route key ({_KEY_HINT})")
        # bool is an int to Python, and JSON's true would otherwise weigh 1.
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= MAX_WEIGHT:
            raise ValueError(f"the weight of {key!r} must be a whole number from 1 to "
                             f"{MAX_WEIGHT}, got {weight!r}")
        checked[str(key)] = weight
    return checked


def parse_split(text: str) -> dict[str, int]:
    """``"api=95,api-v2=5"`` as ``{"api": 95, "api-v2": 5}``; ValueError naming the fault."""
    weights: dict[str, int] = {}
    for part in text.split(","):
        key, equals, weight = part.strip().partition("=")
        key, weight = key.strip(), weight.strip()
        if not equals or not key:
            raise ValueError(f"expected key=weight, got {part.strip()!r} (e.g. api=95,api-v2=5)")
        if not weight.isascii() or not weight.isdigit():
            raise ValueError(f"the weight of {key!r} must be a whole number from 1 to "
                             f"{MAX_WEIGHT}, got {weight!r}")
        if key in weights:
            raise ValueError(f"{key!r} is given twice")
        weights[key] = int(weight)
    return check_split(weights)


def split_text(weights: Mapping[str, int]) -> str:
    """The text form of a split (``parse_split``'s inverse)."""
    return ",".join(f"{key}={weight}" for key, weight in weights.items())


class SmoothWeighted:
    """Deterministic smooth weighted round-robin over a split's keys (module docstring)."""

    __slots__ = ("_credit", "_keys", "_total", "_weights")

    def __init__(self, weights: Mapping[str, int]) -> None:
        checked = check_split(weights)
        self._keys = tuple(checked)
        self._weights = tuple(checked.values())
        self._total = sum(self._weights)
        self._credit = [0] * len(self._keys)

    def pick(self) -> str:
        credit, weights = self._credit, self._weights
        best = 0
        for i, weight in enumerate(weights):
            credit[i] += weight
            if credit[i] > credit[best]:
                best = i
        credit[best] -= self._total
        return self._keys[best]
