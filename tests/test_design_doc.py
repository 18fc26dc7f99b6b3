"""docs/design.rst stays true to the code it describes, and the project cites no document outside
it: every key of protocol/keys.py and every Lua script of transport/scripts.py is on the page."""

from __future__ import annotations

import re
from pathlib import Path

import channels_distributed
from channels_distributed.protocol import keys
from channels_distributed.transport import scripts

PACKAGE = Path(channels_distributed.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "design.rst"
# Documents that were never part of the project (spelt in two parts, so this file is not a hit).
OUTSIDE = ("DESIGN" + ".md", "STYLE" + ".md")


def test_the_page_names_every_key() -> None:
    page = PAGE.read_text()
    named = re.findall(r"^(``<prefix>:\S+``)", keys.__doc__ or "", re.MULTILINE)
    assert len(named) == 16, named
    assert [key for key in named if key not in page] == []


def test_the_page_gives_every_script_and_answer() -> None:
    page = PAGE.read_text()
    names = [name for name in scripts.__all__
             if isinstance(getattr(scripts, name), scripts.Script)]
    assert len(names) == 10, names
    assert [name for name in names if f"\n``{name}``\n" not in page] == []
    answers = ("OURS", "REAPED", "GIVEN_UP", "FULL")
    assert [name for name in answers if f"``{name}``" not in page] == []


def test_no_file_refers_to_a_document_outside_the_project() -> None:
    files = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pxd"), *(ROOT / "docs").glob("*.rst"),
             *(ROOT / "tests").rglob("*.py"), *ROOT.glob("*.rst")]
    hits = [f"{path.name}:{number}" for path in files
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if any(name in line for name in OUTSIDE)]
    assert hits == [], f"these lines cite a document that is not in the project: {hits}"
