"""``channels-distributed status``: every route key, worker and edge, and the layer, at a glance.

``collect()`` reads it (read-only) as a dict of the shape ``schema.json`` gives (``schema()``
loads it), ``render()`` draws it as a table, ``command.run_status`` is both commands' loop.
docs/status.rst says what each figure means and what the reads cost Redis.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .collect import SCAN_LIMIT, SCHEMA_VERSION, collect
from .render import render

__all__ = ["SCAN_LIMIT", "SCHEMA_VERSION", "collect", "render", "schema"]


def schema() -> dict[str, Any]:
    """The JSON Schema of ``collect()``'s result, as shipped in the package."""
    text = resources.files(__name__).joinpath("schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
