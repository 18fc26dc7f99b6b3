"""docs/gunicorn.rst's ``--forwarded-allow-ips`` row says what each supported gunicorn (23.0 to
27) accepts: checked against the validator of the gunicorn installed (23.0.0 in the floors
session, the newest in the others). It claimed CIDR networks everywhere; gunicorn 23.0 refuses
them when it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.core

PAGE = Path(__file__).resolve().parents[2] / "docs" / "gunicorn.rst"


def _row(option: str) -> str:
    """The settings table's row of ``option``, as one line."""
    lines = PAGE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"``{option}``"))
    row = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        row.append(line)
    return " ".join(" ".join(row).split())


def _accepts(value: str) -> bool:
    from gunicorn.config import validate_string_to_addr_list

    try:
        validate_string_to_addr_list(value)
    except ValueError:
        return False
    return True


def test_what_forwarded_allow_ips_accepts_is_what_the_docs_say() -> None:
    import gunicorn

    row = _row("--forwarded-allow-ips")
    assert "addresses or ``*``; CIDR networks (``10.0.0.0/8``) from gunicorn 24.1 on (23.0 and " \
           "24.0 refuse them at start)" in row, row
    assert "with the host bits zero from 24.1.1 on (``10.0.0.1/8`` is refused)" in row, row
    version = tuple(gunicorn.version_info[:3])
    print(f"gunicorn {gunicorn.__version__}")
    assert _accepts("127.0.0.1,::1") and _accepts("*") and _accepts("10.1.2.3")
    assert _accepts("10.0.0.0/8") == (version >= (24, 1, 0))
    assert _accepts("10.0.0.1/8") == ((24, 1, 0) <= version < (24, 1, 1))
