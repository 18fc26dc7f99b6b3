"""``manage.py distributed_routes``: ``channels-distributed routes`` with the project's Redis and
routes.

Redis and the key prefix are the distributor's: ``CHANNELS_DISTRIBUTED['HOSTS']`` and
``['PREFIX']``, else those of the channel layer it names. ``--url`` (repeatable) and
``--prefix`` override them. The settings' routes shown are ``CHANNELS_DISTRIBUTED['ROUTES']``.
The actions and flags are those of ``channels-distributed routes`` (docs/routes.rst).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.routes import ROUTES_DESCRIPTION, add_routes_arguments


class Command(BaseCommand):  # type: ignore[misc]
    help = (" ".join(ROUTES_DESCRIPTION.split()) + " Redis, the key prefix and the routes are "
            "those of CHANNELS_DISTRIBUTED.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", action="append", default=[], metavar="URL",
                            help="Redis URL; repeat it for several servers (default: the "
                                 "distributor's hosts)")
        parser.add_argument("--prefix", default=None,
                            help="key prefix (default: the distributor's)")
        add_routes_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from argparse import Namespace

        from channels_distributed.conf import RedisTarget
        from channels_distributed.django.settings import connection, distributor_config
        from channels_distributed.routes import run_routes

        try:
            table = distributor_config(settings).routes
            if options["url"]:
                target = RedisTarget.resolve(hosts=options["url"], prefix=options["prefix"])
            else:
                found = connection(settings)
                target = RedisTarget.resolve(hosts=found.hosts,
                                             prefix=options["prefix"] or found.prefix)
            code = run_routes(target.hosts, target.prefix, Namespace(**options), self.stdout,
                              [[r.pattern.pattern, r.template] for r in table.routes])
        except ConfigurationError as exc:
            hint = "" if options["url"] else " (or pass --url redis://host:port/db)"
            raise CommandError(f"{exc}{hint}") from None
        if code:
            raise CommandError("the routes could not be changed or read (see above)",
                               returncode=code)
