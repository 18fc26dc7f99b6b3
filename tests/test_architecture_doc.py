"""docs/architecture.rst stays true: its module map names every module of the package, and its
Redis key layout is the one protocol/keys.py documents (and names)."""

from __future__ import annotations

from pathlib import Path

import channels_distributed
from channels_distributed.protocol import keys

PACKAGE = Path(channels_distributed.__file__).resolve().parent
PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.rst"


def _table(text: str) -> list[str]:
    """The rows of the first table that lists ``<prefix>:{c:<channel>}``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "``<prefix>:{c:<channel>}``" in line)
    rows = []
    for line in lines[start:]:
        if line.startswith("="):
            break
        rows.append(" ".join(line.split()))
    return rows


def test_the_page_shows_the_key_layout_of_protocol_keys() -> None:
    assert _table(PAGE.read_text()) == _table(keys.__doc__ or "")


def test_the_module_map_names_every_module() -> None:
    page = PAGE.read_text()
    missing = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "__init__.py" and path.name not in page]
    assert not missing, f"docs/architecture.rst does not place: {missing}"
