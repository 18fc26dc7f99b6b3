"""What the package's Redis-reading management commands share (``distributed_status``,
``distributed_routes``): the ``--url``/``--prefix`` flags, and the Redis they name or else the
distributor's (``CHANNELS_DISTRIBUTED['HOSTS']`` and ``['PREFIX']``, or its channel layer's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..conf import RedisTarget
from ..exceptions import ConfigurationError

__all__ = ["add_redis_arguments", "with_redis"]


def add_redis_arguments(parser: Any) -> None:
    parser.add_argument("--url", action="append", default=[], metavar="URL",
                        help="Redis URL; repeat it for several servers (default: the "
                             "distributor's hosts)")
    parser.add_argument("--prefix", default=None, help="key prefix (default: the distributor's)")


def with_redis(settings: Any, options: dict[str, Any], run: Callable[[RedisTarget], int],
               failed: str) -> None:
    """``run`` on the Redis the options name, else the distributor's; a settings mistake or a
    non-zero exit status becomes Django's ``CommandError`` (``failed`` says what failed)."""
    from django.core.management.base import CommandError

    from .settings import connection

    try:
        if options["url"]:
            target = RedisTarget.resolve(hosts=options["url"], prefix=options["prefix"])
        else:
            found = connection(settings)
            target = RedisTarget.resolve(hosts=found.hosts,
                                         prefix=options["prefix"] or found.prefix)
        code = run(target)
    except ConfigurationError as exc:
        hint = "" if options["url"] else " (or pass --url redis://host:port/db)"
        raise CommandError(f"{exc}{hint}") from None
    if code:
        raise CommandError(f"{failed} (see above)", returncode=code)
