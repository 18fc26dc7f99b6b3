"""``manage.py runworker NAME [NAME ...]``: serve route keys of the path distributor, and the
Channels channels of the same names, so that it does everything Channels' own ``runworker`` does
(``--routes-only`` / ``--channels-only`` narrow it).

Django picks a command from the app listed *first* in ``INSTALLED_APPS`` that has it
(``get_commands()`` walks the apps in reverse and lets earlier ones overwrite later ones). Channels
ships a ``runworker`` too, so list ``"channels_distributed"`` **before** ``"channels"`` for this one
to run. Connection settings come from the default channel layer: our ``RedisChannelLayer`` is
used as it is; with another Redis layer (channels_redis), route keys use the ``hosts`` and
``prefix`` of its ``CONFIG`` and Channels channels are served by that layer itself. ``--url``
overrides both.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_distributed.exceptions import ConfigurationError, LifespanFailure

# Django's --verbosity (0-3) as a log level for the package's records.
_LEVELS = {0: "warning", 1: "info"}


class Command(BaseCommand):  # type: ignore[misc]
    help = ("Take connections from the given route keys (see create_path_distributor) and run "
            "the project's ASGI application for them.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("keys", nargs="+", metavar="NAME",
                            help="route key(s) to serve; also served as Channels channels")
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--routes-only", action="store_true",
                          help="serve only route keys of the path distributor")
        only.add_argument("--channels-only", action="store_true",
                          help="serve only Channels channels (like channels' runworker)")
        parser.add_argument("--app", default=None,
                            help="module:attribute of the application (default: "
                                 "ASGI_APPLICATION)")
        parser.add_argument("--url", default=None,
                            help="Redis URL (default: the default channel layer's hosts)")
        parser.add_argument("--prefix", default=None, help="key prefix (default: the layer's)")
        parser.add_argument("--concurrency", type=int, default=100)
        parser.add_argument("--grace", type=float, default=30.0)
        parser.add_argument("--interface", default="auto",
                            choices=["auto", "asgi3", "asgi2", "legacy"])

    def handle(self, *args: Any, **options: Any) -> None:
        from channels_distributed.cli import console_logging
        from channels_distributed.worker import Node

        # The package's records only: the project's LOGGING setting owns the rest.
        console_logging(_LEVELS.get(options["verbosity"], "debug"), "channels_distributed")

        connection = self._connection(options["url"])
        if options["prefix"] is not None:
            connection["prefix"] = options["prefix"]
        try:
            names = options["keys"]
            node = Node(self._application(options["app"]),
                        keys=None if options["channels_only"] else names,
                        channels=() if options["routes_only"] else names,
                        interface=options["interface"], concurrency=options["concurrency"],
                        grace=options["grace"], **connection)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        what = ("channel(s)" if options["channels_only"] else "route key(s)"
                if options["routes_only"] else "route key(s) and channel(s)")
        self.stdout.write(f"Serving {what} {', '.join(options['keys'])}")
        try:
            node.run()
        except LifespanFailure as exc:
            raise CommandError(str(exc)) from None

    def _application(self, spec: str | None) -> Any:
        if spec:
            from channels_distributed.cli import import_app

            return import_app(spec)
        if not getattr(settings, "ASGI_APPLICATION", None):
            raise CommandError("set ASGI_APPLICATION in your settings or pass --app")
        from channels.routing import get_default_application

        return get_default_application()

    def _connection(self, url: str | None) -> dict[str, Any]:
        if url:
            return {"url": url}
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import get_channel_layer

        from channels_distributed.layer import RedisChannelLayer

        layer = get_channel_layer()
        if isinstance(layer, RedisChannelLayer):
            return {"layer": layer}
        # Another Redis layer (channels_redis takes the same CONFIG): its servers and prefix for
        # the route keys, the layer itself for Channels channels.
        layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
        config = layers.get(DEFAULT_CHANNEL_LAYER, {}).get("CONFIG") or {}
        if layer is None or not config.get("hosts"):
            raise CommandError("the default channel layer names no Redis hosts (CONFIG "
                               "'hosts'); pass --url redis://host:port/db")
        connection: dict[str, Any] = {"hosts": config["hosts"], "channel_layer": layer}
        if config.get("prefix"):
            connection["prefix"] = config["prefix"]
        return connection
