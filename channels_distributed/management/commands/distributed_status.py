"""``manage.py distributed_status``: ``channels-distributed status`` with the project's Redis.

Redis and the key prefix are the distributor's: ``CHANNELS_DISTRIBUTED['HOSTS']`` and
``['PREFIX']``, else those of the channel layer it names (``CHANNELS_DISTRIBUTED['LAYER']``,
``"default"`` by default). ``--url`` (repeatable) and ``--prefix`` override them. The other
flags are those of ``channels-distributed status`` (docs/status.rst).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from channels_distributed.django.commands import add_redis_arguments, with_redis
from channels_distributed.status.command import STATUS_DESCRIPTION, add_status_arguments


class Command(BaseCommand):  # type: ignore[misc]
    help = (" ".join(STATUS_DESCRIPTION.split()) + " Redis and the key prefix are those of "
            "CHANNELS_DISTRIBUTED (its HOSTS and PREFIX, else its channel layer's).")

    def add_arguments(self, parser: CommandParser) -> None:
        add_redis_arguments(parser)
        add_status_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from argparse import Namespace

        from channels_distributed.status.command import run_status

        with_redis(settings, options, lambda target: run_status(
            target.hosts, target.prefix, Namespace(**options), self.stdout),
            "the status could not be read")
