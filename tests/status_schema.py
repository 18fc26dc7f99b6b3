"""The JSON Schema ``channels-distributed status --json`` is checked against: the one shipped in
the package, and its strict form (every documented object closed)."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft202012Validator

from channels_distributed.status import schema

__all__ = ["strict_validator", "validate"]


def strict_validator() -> Draft202012Validator:
    """The shipped schema with every object closed (``unevaluatedProperties: false``): the
    output holds the documented fields and no other. (The shipped one stays open: fields may
    be added within schema_version 1.) ``process`` stays open: worker and edge extend it."""
    closed = copy.deepcopy(schema())

    def close(node: Any, name: str = "") -> None:
        if isinstance(node, dict):
            if "properties" in node and name != "process":
                node["unevaluatedProperties"] = False
            for key, value in node.items():
                close(value, key)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(closed)
    Draft202012Validator.check_schema(closed)
    return Draft202012Validator(closed)


def validate(status: dict[str, Any]) -> None:
    """``status`` against the shipped schema, and against its strict form."""
    Draft202012Validator(schema()).validate(status)
    strict_validator().validate(status)
