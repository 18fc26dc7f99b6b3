"""The console command's own surface, in memory: ``--version`` and help texts that read as plain
text (argparse prints them as written: no reStructuredText markup). The commands as processes:
tests/e2e/test_dist_cli.py and tests/smoke."""

from __future__ import annotations

import argparse

import pytest

import channels_distributed
from channels_distributed.cli import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """It exited 2 ("the following arguments are required: command")."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"channels-distributed {channels_distributed.__version__}\n"


def _helps() -> dict[str, str]:
    from channels_distributed.cli import _parser
    from channels_distributed.management.commands import distributed_routes, distributed_status
    from channels_distributed.management.commands.runworker import Command

    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {"channels-distributed": parser.format_help()}
    helps.update({f"channels-distributed {name}": sub.format_help()
                  for name, sub in commands.choices.items()})
    helps["manage.py runworker"] = Command().create_parser("manage.py", "runworker").format_help()
    helps["manage.py distributed_status"] = distributed_status.Command().create_parser(
        "manage.py", "distributed_status").format_help()
    helps["manage.py distributed_routes"] = distributed_routes.Command().create_parser(
        "manage.py", "distributed_routes").format_help()
    return helps


def test_help_is_plain_text() -> None:
    """``--help`` showed "The ``channels-distributed`` console command."."""
    helps = _helps()
    assert set(helps) == {"channels-distributed", "channels-distributed worker",
                          "channels-distributed status", "channels-distributed demo",
                          "channels-distributed check", "channels-distributed routes",
                          "manage.py runworker", "manage.py distributed_status",
                          "manage.py distributed_routes"}
    for name, text in helps.items():
        for markup in ("``", ":class:", ":func:", ".. ", "`_"):
            assert markup not in text, f"{name} --help shows {markup!r}:\n{text}"


def test_the_workers_help_says_websockets_hold_slots() -> None:
    """An open WebSocket holds a --concurrency slot, and counts against gunicorn's
    --worker-connections at the edge (tests/e2e/test_dist_limits.py shows both)."""
    for name in ("channels-distributed worker", "manage.py runworker"):
        text = " ".join(_helps()[name].split())
        assert "An open WebSocket holds a slot for as long as it is open" in text, name
        assert "gunicorn --worker-connections, 1000 per edge process by default" in text, name


def test_the_demo_says_what_it_needs() -> None:
    text = " ".join(_helps()["channels-distributed demo"].split())
    assert "pip install 'channels-distributed[demo]'" in text
