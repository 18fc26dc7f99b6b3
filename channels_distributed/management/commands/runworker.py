"""``manage.py runworker NAME [NAME ...]``: serve route keys of the path distributor, and the
Channels channels of the same names, as Channels' own ``runworker`` does (``--routes-only`` /
``--channels-only`` narrow it).

Django picks a command from the app listed *first* in ``INSTALLED_APPS`` that has it, and
Channels ships a ``runworker`` too: list ``"channels_distributed"`` **before** ``"channels"``
(``manage.py check`` reports ``channels_distributed.E005`` otherwise). Redis and the key prefix
come from the channel layer named by ``--layer`` (default ``CHANNELS_DISTRIBUTED['LAYER']``, else
``"default"``): our ``RedisChannelLayer`` is used as it is; with another Redis layer
(channels_redis), route keys use the ``hosts`` and ``prefix`` of its ``CONFIG`` and Channels
channels are served by that layer itself. ``--url`` overrides both. The application is
``--app``, else ``CHANNELS_DISTRIBUTED['WORKER_APPLICATION']``, else ``ASGI_APPLICATION``.
SIGTERM drains: no new connections, in-flight ones finish within ``--grace`` seconds.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_distributed.cli import WORKER_EPILOG, add_node_arguments
from channels_distributed.exceptions import ConfigurationError, LifespanFailure
from channels_distributed.logs import setup_logging

# Django's --verbosity (0-3) as a log level for the package's records, when the project's
# LOGGING gives them no handler.
_LEVELS = {0: "warning", 1: "info"}


class Command(BaseCommand):  # type: ignore[misc]
    help = ("Take connections from the given route keys (CHANNELS_DISTRIBUTED['ROUTES']) and "
            "Channels messages from the channels of the same names, and run the project's ASGI "
            "application for them. " + WORKER_EPILOG.replace("\n", " "))

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME",
                            help="route key(s) to serve; also served as Channels channels")
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--routes-only", action="store_true",
                          help="serve only route keys of the path distributor")
        only.add_argument("--channels-only", action="store_true",
                          help="serve only Channels channels (like channels' runworker)")
        parser.add_argument("--layer", default=None,
                            help="channel layer alias (default: CHANNELS_DISTRIBUTED['LAYER'] "
                                 "or 'default')")
        parser.add_argument("--app", default=None,
                            help="module:attribute of the application (default: "
                                 "WORKER_APPLICATION or ASGI_APPLICATION)")
        parser.add_argument("--url", default=None,
                            help="Redis URL (default: the channel layer's hosts)")
        parser.add_argument("--prefix", default=None, help="key prefix (default: the layer's)")
        parser.add_argument("--per-request-threads", action="store_true",
                            help="start a thread for each Django request, as Django's "
                                 "ASGIHandler does on its own, instead of taking one from the "
                                 "worker's pool")
        add_node_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from channels_distributed.django.worker import WorkerOptions, make_node, url_would_fix

        # Only when the project's LOGGING gives the package's records nowhere to go.
        setup_logging(_LEVELS.get(options["verbosity"], "debug"), "channels_distributed",
                      log_format=options["log_format"])
        wanted = WorkerOptions(
            tuple(options["names"]), routes=not options["channels_only"],
            channels=not options["routes_only"], app=options["app"], layer=options["layer"],
            url=options["url"], prefix=options["prefix"], concurrency=options["concurrency"],
            grace=options["grace"], interface=options["interface"],
            health_bind=options["health_bind"], metrics_bind=options["metrics_bind"],
            thread_pool=not options["per_request_threads"])
        try:
            node, banner = make_node(settings, wanted)
        except ConfigurationError as exc:
            # --url is a way round settings that name no Redis, never the fix of a mistake.
            hint = " (or pass --url redis://host:port/db)" if url_would_fix(exc) else ""
            raise CommandError(f"{exc}{hint}") from None
        self.stdout.write("\n".join(banner))
        self.stdout.flush()
        try:
            node.run()
        except LifespanFailure as exc:
            raise CommandError(str(exc)) from None
