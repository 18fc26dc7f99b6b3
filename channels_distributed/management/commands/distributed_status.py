"""``manage.py distributed_status``: ``channels-distributed status`` with the project's Redis.

Redis and the key prefix are the distributor's: ``CHANNELS_DISTRIBUTED['HOSTS']`` and
``['PREFIX']``, else those of the channel layer it names (``CHANNELS_DISTRIBUTED['LAYER']``,
``"default"`` by default). ``--url`` (repeatable) and ``--prefix`` override them. The other
flags are those of ``channels-distributed status`` (docs/status.rst).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.status.command import STATUS_DESCRIPTION, add_status_arguments


class Command(BaseCommand):  # type: ignore[misc]
    help = (" ".join(STATUS_DESCRIPTION.split()) + " Redis and the key prefix are those of "
            "CHANNELS_DISTRIBUTED (its HOSTS and PREFIX, else its channel layer's).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", action="append", default=[], metavar="URL",
                            help="Redis URL; repeat it for several servers (default: the "
                                 "distributor's hosts)")
        parser.add_argument("--prefix", default=None,
                            help="key prefix (default: the distributor's)")
        add_status_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from argparse import Namespace

        from channels_distributed.conf import RedisTarget
        from channels_distributed.django.settings import connection
        from channels_distributed.status.command import run_status

        try:
            if options["url"]:
                target = RedisTarget.resolve(hosts=options["url"], prefix=options["prefix"])
            else:
                found = connection(settings)
                target = RedisTarget.resolve(hosts=found.hosts,
                                             prefix=options["prefix"] or found.prefix)
            code = run_status(target.hosts, target.prefix, Namespace(**options), self.stdout)
        except ConfigurationError as exc:
            hint = "" if options["url"] else " (or pass --url redis://host:port/db)"
            raise CommandError(f"{exc}{hint}") from None
        if code:
            raise CommandError("the status could not be read (see above)", returncode=code)
