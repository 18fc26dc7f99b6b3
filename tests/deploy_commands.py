"""The command lines of deploy/ and docs/operations.rst, read from their files, and checked
against the real parsers of the commands they run (tests/test_deploy_files.py uses both).

Commands are read from: systemd units (``ExecStart=`` and the other ``Exec*=`` lines, with
``%i`` and the variables of the example environment files expanded as systemd expands them),
Kubernetes containers (``command`` + ``args``, ``$(VAR)`` expanded), Compose services
(``command``, ``${VAR:-default}`` expanded) and the literal blocks of docs/operations.rst.

A command is checked by the parser that would read it: ``channels-distributed`` by
``channels_distributed.cli._parser()``, ``manage.py``/``django-admin`` commands by their Django
command's parser, ``gunicorn`` by gunicorn's own settings (``KNOWN_SETTINGS``, each value through
its validator). Every ``--flag`` must be an exact option of that parser (argparse would accept an
abbreviation), and the whole line must parse.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the checkout, or the suite copy nox makes
DEPLOY = ROOT / "deploy"
OPERATIONS = ROOT / "docs" / "operations.rst"
SYSTEMD = DEPLOY / "systemd"
#: Stand-ins for values a deployment supplies (a token must be 16 characters or more).
SECRET = "x" * 24
_MAINPID = "4242"
#: Commands the files run that are not the package's, Django's or gunicorn's: not checked.
OTHERS = frozenset({"redis-server", "redis-cli", "kill", "sleep", "python -c"})
_DOC_PROGRAMS = ("channels-distributed ", "python manage.py ", "manage.py ", "gunicorn ",
                 "django-admin ")


@dataclass(frozen=True)
class Command:
    """One command line and where it was read."""

    where: str
    argv: tuple[str, ...]


# -- reading -----------------------------------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    """A systemd ``EnvironmentFile``: ``KEY=value`` lines."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def unit_entries(path: Path) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) of a unit file, continuation lines joined."""
    section, pending = "", ""
    for line in path.read_text().splitlines():
        if not pending and line.lstrip().startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            key, _, value = line.partition("=")
            yield section, key.strip(), value.strip()


def _systemd_argv(value: str, instance: str, env: Mapping[str, str]) -> tuple[str, ...]:
    value = value.lstrip("-@:+!").replace("%i", instance).replace("%%", "%")
    argv: list[str] = []
    for word in shlex.split(value):
        if re.fullmatch(r"\$\w+", word):  # a word of its own: split at whitespace
            argv += env.get(word[1:], _MAINPID if word == "$MAINPID" else "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return tuple(argv)


def systemd_commands() -> Iterator[Command]:
    """Every ``Exec*`` line of every unit; a template once per example ``worker-KEY.env``."""
    common = env_file(SYSTEMD / "channels-distributed.env")
    for unit in sorted(SYSTEMD.glob("*.service")):
        instances = [""]
        if unit.name.endswith("@.service"):
            instances = [p.stem.removeprefix("worker-") for p in SYSTEMD.glob("worker-*.env")]
        for instance in sorted(instances):
            env = dict(common)
            if instance:
                env.update(env_file(SYSTEMD / f"worker-{instance}.env"))
            for _, key, value in unit_entries(unit):
                if key.startswith("Exec"):
                    yield Command(f"{unit.name} ({instance or 'no instance'}) {key}",
                                  _systemd_argv(value, instance, env))


def containers(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of a Deployment's or a CronJob's pods (none for other kinds)."""
    spec = document.get("spec") or {}
    if document.get("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = (spec.get("template") or {}).get("spec") or {}
    return list(pod.get("containers") or [])


def kubernetes_commands(documents: Mapping[str, list[Mapping[str, Any]]]) -> Iterator[Command]:
    for name, docs in documents.items():
        for doc in docs:
            for container in containers(doc):
                argv = [*container.get("command", ()), *container.get("args", ())]
                yield Command(f"{name} {doc['kind']}/{doc['metadata']['name']}",
                              tuple(re.sub(r"\$\((\w+)\)", SECRET, str(a)) for a in argv))


def compose_value(text: str) -> str:
    """Compose's ``${VAR:-default}`` (and ``${VAR}``: empty) expanded."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


def compose_commands(compose: Mapping[str, Any]) -> Iterator[Command]:
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is not None:
            words = shlex.split(command) if isinstance(command, str) else command
            yield Command(f"compose.yaml {name}",
                          tuple(compose_value(str(word)) for word in words))
        test = (service.get("healthcheck") or {}).get("test")
        if test and test[0] == "CMD":
            yield Command(f"compose.yaml {name} healthcheck", tuple(test[1:]))


def literal_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the reStructuredText literal blocks: the lines indented below a
    paragraph ending with ``::``."""
    inside, base = False, 0
    for number, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip())
        if inside and (not line.strip() or indent > base):
            if line.strip():
                yield number, line.strip()
            continue
        inside, base = line.rstrip().endswith("::"), indent


def documented_commands(text: str) -> Iterator[Command]:
    """The command lines of the page's literal blocks that run one of the checked programs
    (others, such as ``kubectl`` or ``systemctl``, are the reader's)."""
    lines = list(literal_lines(text))
    for index, (number, line) in enumerate(lines):
        if not line.startswith(_DOC_PROGRAMS) or (index and lines[index - 1][1].endswith("\\")):
            continue
        follow = index
        while line.endswith("\\"):
            follow += 1
            line = line[:-1] + " " + lines[follow][1]
        yield Command(f"docs/operations.rst:{number}",
                      tuple(shlex.split(line.replace("$STATUS_TOKEN", SECRET), comments=True)))


# -- checking ----------------------------------------------------------------------------------


def check(command: Command) -> str:
    """Check one command line; says which program (and subcommand) it was, or raises
    AssertionError naming the file and what is wrong."""
    argv = list(command.argv)
    program = Path(argv[0]).name
    if program in ("python", "python3"):
        if argv[1:2] == ["manage.py"]:
            return _django(command, argv[2:])
        if argv[1:3] == ["-m", "django"]:
            return _django(command, argv[3:])
        if argv[1:3] == ["-m", "gunicorn"]:
            return _gunicorn(command, argv[3:])
        program = f"{program} {argv[1]}"
    elif program in ("manage.py", "django-admin"):
        return _django(command, argv[1:])
    elif program == "channels-distributed":
        return _cli(command, argv[1:])
    elif program == "gunicorn":
        return _gunicorn(command, argv[1:])
    program = program.replace("python3 ", "python ")
    assert program in OTHERS, (
        f"{command.where}: {program!r} is a command this test does not know: check it here "
        f"(tests/deploy_commands.py), or add it to OTHERS if it is not the package's")
    return program


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


def _flags(argv: list[str]) -> list[str]:
    flags = []
    for word in argv:
        if word == "--":
            break
        if word.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", word):
            flags.append(word.split("=", 1)[0])
    return flags


def _exact(command: Command, argv: list[str], known: set[str], program: str) -> None:
    unknown = [flag for flag in _flags(argv) if flag not in known]
    assert not unknown, f"{command.where}: {program} has no option {unknown} ({command.argv})"


def _parse(command: Command, parser: argparse.ArgumentParser, argv: list[str],
           program: str) -> argparse.Namespace:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parser.parse_args(argv)
    except SystemExit:
        raise AssertionError(f"{command.where}: {program} refuses {argv}: "
                             f"{errors.getvalue().strip()}") from None


def _cli(command: Command, argv: list[str]) -> str:
    from channels_distributed.cli import _parser

    parser = _parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = argv[0]
    assert sub in subcommands.choices, (
        f"{command.where}: channels-distributed has no subcommand {sub!r} "
        f"(it has {sorted(subcommands.choices)})")
    program = f"channels-distributed {sub}"
    _exact(command, argv[1:], _options(subcommands.choices[sub]) | _options(parser), program)
    _parse(command, parser, argv, program)
    return program


#: Where a ``manage.py`` command comes from: the package's, its demo project's, else Django's.
_COMMAND_MODULES = ("channels_distributed.management.commands.{}",
                    "channels_distributed.demo.management.commands.{}",
                    "django.core.management.commands.{}")


def _django(command: Command, argv: list[str]) -> str:
    from django.core.management.base import CommandError

    name = argv[0]
    program = f"manage.py {name}"
    for template in _COMMAND_MODULES:
        module = template.format(name)
        if importlib.util.find_spec(module.rpartition(".")[0]) and importlib.util.find_spec(
                module):
            break
    else:
        raise AssertionError(f"{command.where}: no manage.py command {name!r} in the package, "
                             "its demo project or Django")
    parser = importlib.import_module(module).Command().create_parser("manage.py", name)
    _exact(command, argv[1:], _options(parser), program)
    try:
        parser.parse_args(argv[1:])
    except CommandError as exc:
        raise AssertionError(f"{command.where}: {program} refuses {argv[1:]}: {exc}") from None
    return program


def _gunicorn(command: Command, argv: list[str]) -> str:
    from gunicorn.config import KNOWN_SETTINGS, Config

    config = Config()
    known = {flag for setting in KNOWN_SETTINGS for flag in setting.cli or ()}
    _exact(command, argv, known, "gunicorn")
    parsed = _parse(command, config.parser(), argv, "gunicorn")
    for name, value in vars(parsed).items():
        if name != "args" and value is not None:
            try:
                config.set(name, value)  # gunicorn's validator of the setting
            except Exception as exc:
                raise AssertionError(f"{command.where}: gunicorn refuses {name}={value!r}: "
                                     f"{exc}") from None
    config.worker_class  # noqa: B018 - imports the worker class it names
    (app,) = parsed.args
    module = app.partition(":")[0]
    if module.startswith("channels_distributed"):
        assert importlib.util.find_spec(module), f"{command.where}: no module {module}"
    return "gunicorn"
