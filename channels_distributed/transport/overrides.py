"""The route overrides in Redis: read by every edge, changed by operators without losing a write.

One key, ``<prefix>:routes`` (``DistKeys.routes``), holds the document of
``protocol/overrides.py``. An edge reads it with one GET per poll. A change is made on the
document as read and written only if the key still holds what was read (one small script:
compare, then SET); when another operator wrote in between, the change is made again on what
they wrote, so both changes stand and every version number is used once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..exceptions import ReplyError
from ..protocol.overrides import OverrideError, RouteOverrides, parse_document
from .scripts import WRITE_IF_UNCHANGED
from .topology import Shard

__all__ = ["ATTEMPTS", "change_overrides", "operator", "read_overrides", "write_if_unchanged"]

ATTEMPTS = 10


async def read_overrides(shard: Shard, key: str) -> bytes | None:
    """The document as stored, None when none was ever written."""
    link = await shard.link()
    raw = await link.call("GET", key)
    return raw if isinstance(raw, bytes) else None


async def write_if_unchanged(shard: Shard, key: str, read: bytes | None, document: str) -> bool:
    link = await shard.link()
    return int(await WRITE_IF_UNCHANGED.run(link, [key], [read or b"", document])) == 1


def operator() -> str:
    """Who writes: the user and the machine, as the edges log it."""
    import getpass

    from ..figures import host_name

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return f"{user}@{host_name()}"


async def change_overrides(shard: Shard, key: str,
                           change: Callable[[RouteOverrides, str, float], RouteOverrides],
                           *, repair: bool = False) -> RouteOverrides:
    """Apply ``change`` (document, who, when -> next document) to the stored document and write
    it, again on the newer one if someone wrote meanwhile; the document written. A stored
    document the edges refuse (written by hand) raises OverrideError, unless ``repair``: then
    the change starts from no override (``routes clear --all`` replaces it)."""
    by = operator()
    for _ in range(ATTEMPTS):
        raw = await read_overrides(shard, key)
        try:
            current = parse_document(raw)
        except OverrideError as exc:
            if not repair:
                raise OverrideError(f"the stored overrides are refused by the edges ({exc}); "
                                    "replace them: routes clear --all") from None
            current = RouteOverrides(version=_version_of(raw))
        written = change(current, by, time.time())
        if await write_if_unchanged(shard, key, raw, written.dumps()):
            return written
    raise ReplyError(f"{key} kept changing under {ATTEMPTS} attempts to write it; try again")


def _version_of(raw: bytes | None) -> int:
    """The version a refused document claims, if it says one: the next one goes above it."""
    import json

    try:
        version = json.loads(raw or b"{}").get("version", 0)
    except (ValueError, AttributeError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0
