"""ASGI types have one home, channels_distributed/typing.py (built on asgiref.typing)."""

from __future__ import annotations

import ast
from pathlib import Path

import channels_distributed

PACKAGE = Path(channels_distributed.__file__).resolve().parent
ASGI_NAMES = {"Scope", "Event", "Receive", "Send", "ASGI3", "ASGI3App", "ASGIApp"}


def test_no_module_redefines_the_asgi_types() -> None:
    # distributor.py, relay.py, worker_connection.py, interfaces.py, streams.py and
    # protocol/legacy.py each defined some of them before.
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "typing.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {target.id}"
                      for target in targets
                      if isinstance(target, ast.Name) and target.id in ASGI_NAMES]
    assert not found, f"ASGI types defined outside typing.py: {found}"


def test_typing_offers_asgiref_names() -> None:
    from asgiref import typing as asgiref_typing

    from channels_distributed import typing

    assert typing.ASGI3Application is asgiref_typing.ASGI3Application
    assert typing.ASGIReceiveCallable is asgiref_typing.ASGIReceiveCallable
    assert typing.ASGISendCallable is asgiref_typing.ASGISendCallable
