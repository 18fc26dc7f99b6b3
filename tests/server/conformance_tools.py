"""What the conformance tests need besides a server: skip-or-fail, and a safe archive unpacker."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest


def on_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True under ``CI=true`` (GitHub Actions, GitLab CI and most others set it)."""
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip for ``reason``; on CI a conformance run that cannot happen is a failure instead."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


class UnsafeArchive(Exception):
    """An archive member that would land outside the target, or is not a file or directory."""


def extract(archive: Path, target: Path, filtered: bool = hasattr(tarfile, "data_filter")) -> None:
    """Unpack ``archive`` into ``target``: with tarfile's ``data`` filter where Python has it
    (3.10.12+, 3.11.4+, 3.12+), else after checking every member (``checked_members``)."""
    with tarfile.open(archive) as tar:
        if filtered:
            tar.extractall(target, filter="data")
        else:
            # Checked above; where Python has filters, say so (3.12+ warns about a bare call).
            trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(target, members=checked_members(tar, target), **trusted)


def checked_members(tar: tarfile.TarFile, target: Path) -> list[tarfile.TarInfo]:
    """Every member, refused (``UnsafeArchive``) unless it is a file or a directory that stays
    inside ``target``; modes lose their set-id bits and group/other write, as the data filter's."""
    root = target.resolve()
    members = []
    for member in tar.getmembers():
        if not (member.isfile() or member.isdir()):
            kind = member.type.decode("latin-1")
            raise UnsafeArchive(f"{member.name!r} is not a file or directory (type {kind!r})")
        destination = (root / member.name).resolve()
        if os.path.isabs(member.name) or not destination.is_relative_to(root):
            raise UnsafeArchive(f"{member.name!r} would be written outside {target}")
        member.mode &= 0o755
        members.append(member)
    return members
