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
from django.core.management.base import BaseCommand, CommandParser

from channels_distributed.django.commands import add_redis_arguments, with_redis
from channels_distributed.routes import ROUTES_DESCRIPTION, add_routes_arguments


class Command(BaseCommand):  # type: ignore[misc]
    help = (" ".join(ROUTES_DESCRIPTION.split()) + " Redis, the key prefix and the routes are "
            "those of CHANNELS_DISTRIBUTED.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_redis_arguments(parser)
        add_routes_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from argparse import Namespace

        from channels_distributed.django.settings import distributor_config
        from channels_distributed.routes import run_routes

        def run(target: Any) -> int:
            table = distributor_config(settings).routes
            return run_routes(target.hosts, target.prefix, Namespace(**options), self.stdout,
                              [[r.pattern.pattern, r.template] for r in table.routes])

        with_redis(settings, options, run, "the routes could not be changed or read")
