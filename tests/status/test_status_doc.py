"""docs/status.rst documents every field the JSON has, the ACL the code holds, and the flags the
command takes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from channels_distributed.status import schema
from channels_distributed.status.reads import STATUS_ACL

DOC = Path(__file__).resolve().parents[2] / "docs" / "status.rst"
if not DOC.exists():
    pytest.skip("no docs/ beside tests/: run it from the checkout, or from nox's copy of the "
                "suite, which carries docs/", allow_module_level=True)
TEXT = DOC.read_text()


def _fields(node: Any) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for name, value in node.get("properties", {}).items():
            found.add(name)
            found |= _fields(value)
        for key, value in node.items():
            if key != "properties":
                found |= _fields(value)
    elif isinstance(node, list):
        for value in node:
            found |= _fields(value)
    return found


def test_every_field_of_the_schema_is_documented() -> None:
    fields = _fields(schema())
    assert {"queued", "oldest_s", "saturation", "up_s", "complete"} <= fields
    missing = sorted(name for name in fields if f"``{name}``" not in TEXT)
    assert not missing, f"not in docs/status.rst: {missing}"


def test_the_documented_acl_is_the_codes() -> None:
    assert f"ACL SETUSER status on >secret {STATUS_ACL}" in TEXT


def test_every_flag_is_documented() -> None:
    from channels_distributed.cli import _parser

    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {flag for action in commands.choices["status"]._actions
             for flag in action.option_strings if flag.startswith("--") and flag != "--help"}
    assert {"--url", "--prefix", "--json", "--watch", "--top", "--scan-limit"} <= flags
    assert all(f"``{flag}" in TEXT for flag in flags)
