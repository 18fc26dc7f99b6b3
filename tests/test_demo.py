"""The demo's own pieces, in memory (the demo as a process: tests/e2e/test_dist_cli.py)."""

from __future__ import annotations

import pytest

from channels_distributed.demo.management.commands.prepare import Command
from channels_distributed.demo.run import prepare_command


@pytest.mark.parametrize("password", ["plain123", "-starts-with-a-dash", "--looks-like-an-option"])
def test_the_admin_password_reaches_prepare_whatever_it_starts_with(password: str) -> None:
    """A generated password starting with "-" stopped the demo ("expected one argument")."""
    argv = prepare_command(["python", "manage.py"], password)
    assert argv[2] == "prepare"
    options = Command().create_parser("manage.py", "prepare").parse_args(argv[3:])
    assert options.admin_password == password
