"""What ``manage.py runworker`` runs: a ``Node`` on the project's application, Redis from the
settings (``settings.connection``), and the start-up banner that says what it serves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..conf.checks import field_defaults
from ..conf.node import NodeConfig
from ..exceptions import ConfigurationError
from ..worker import Node
from .settings import connection, layer_setting, name, project_settings, worker_application
from .threads import ThreadPool, django_http_handler, pooled, supports_executor

__all__ = ["WorkerOptions", "banner", "make_node", "request_threads", "url_would_fix"]


_NODE = field_defaults(NodeConfig)  # the defaults of the worker's settings, from their fields


@dataclass(frozen=True)
class WorkerOptions:
    """runworker's command line."""

    names: tuple[str, ...]
    routes: bool = True  # serve the names as route keys
    channels: bool = True  # and as Channels channels
    app: str | None = None  # module:attribute; default WORKER_APPLICATION or ASGI_APPLICATION
    layer: str | None = None  # the channel layer alias; default CHANNELS_DISTRIBUTED['LAYER']
    url: str | None = None
    prefix: str | None = None
    concurrency: int = _NODE["concurrency"]
    grace: float = _NODE["grace"]
    interface: str = _NODE["interface"]
    health_bind: str | None = None
    metrics_bind: str | None = None
    # Django's per-request thread from a pool (``django.threads``); False: a new one per request
    thread_pool: bool = True


def application(settings: Any, spec: str | None) -> tuple[Any, str]:
    """The application and how to name it: ``--app``, WORKER_APPLICATION or ASGI_APPLICATION."""
    if spec:
        from ..cli import import_app

        return import_app(spec), spec
    path = worker_application(settings)
    if path is None:
        raise ConfigurationError("ASGI_APPLICATION", "is not set", "set ASGI_APPLICATION (or "
                                 "CHANNELS_DISTRIBUTED['WORKER_APPLICATION']) or pass --app")
    from django.utils.module_loading import import_string

    try:
        return import_string(path), path
    except ImportError as exc:
        setting = (name("WORKER_APPLICATION") if project_settings(settings).get(
            "WORKER_APPLICATION") else "ASGI_APPLICATION")
        raise ConfigurationError(setting, f"cannot import {path!r}: {exc}",
                                 "check the import path of the application") from None


def redis_options(settings: Any, options: WorkerOptions) -> tuple[dict[str, Any], str]:
    """Node's connection keyword arguments, and where they come from (for the banner)."""
    if options.url:
        found: dict[str, Any] = {"url": options.url}
        if options.prefix is not None:
            found["prefix"] = options.prefix
        return found, "--url"
    from channels.layers import get_channel_layer

    from ..layer import RedisChannelLayer

    place = connection(settings, options.layer)
    prefix = options.prefix if options.prefix is not None else place.prefix
    try:
        layer = get_channel_layer(place.alias)
    except ConfigurationError as exc:  # named as the project writes it (E007 of the checks)
        raise layer_setting(place.alias, exc) from None
    if "HOSTS" in project_settings(settings):
        source = f"{name('HOSTS')}, channel layer {place.alias!r}"
    else:
        source = f"channel layer {place.alias!r}"
        if isinstance(layer, RedisChannelLayer):
            return {"layer": layer, "prefix": prefix}, source
    # HOSTS of its own, or another Redis layer (channels_redis takes the same CONFIG): those
    # servers for the route keys, the layer itself for Channels channels.
    return {"hosts": place.hosts, "prefix": prefix, "channel_layer": layer}, source


def url_would_fix(exc: ConfigurationError) -> bool:
    """Whether ``--url`` is a fix for ``exc``: the settings name no Redis (no such channel
    layer, or one without ``hosts``), not a mistake in a setting that is there."""
    return (exc.setting.endswith("['hosts']") and "no Redis hosts" in exc.problem) or (
        exc.setting.startswith("CHANNEL_LAYERS[") and exc.problem.startswith("is not set"))


def make_node(settings: Any, options: WorkerOptions) -> tuple[Node, list[str]]:
    """The worker, and its start-up banner."""
    app, app_name = application(settings, options.app)
    app, threads = request_threads(app, options)
    found, source = redis_options(settings, options)
    node = Node(app, keys=options.names if options.routes else None,
                channels=options.names if options.channels else (),
                interface=options.interface, concurrency=options.concurrency,
                grace=options.grace, health_bind=options.health_bind,
                metrics_bind=options.metrics_bind, **found)
    target = node.config.target
    # Described, never shown as written: a URL or host dict may carry a password.
    where = (f"{', '.join(h.describe() for h in target.hosts)} ({source}, prefix "
             f"{target.prefix!r})")
    return node, [*banner(options, app_name, where), f"  threads      {threads}"]


def request_threads(app: Any, options: WorkerOptions) -> tuple[Any, str]:
    """The application with Django's per-request threads taken from a pool where that can be
    done (``threads.pooled``), and what the banner says of its threads."""
    if not options.thread_pool:
        return app, "a new thread per Django request (--per-request-threads)"
    if django_http_handler(app) is None:
        return app, "as the application starts them (its HTTP application is not Django's)"
    if not supports_executor():
        return app, ("a new thread per Django request (this asgiref's ThreadSensitiveContext "
                     "takes no executor)")
    return (pooled(app, ThreadPool(keep=options.concurrency)),
            f"Django requests on pooled threads (up to {options.concurrency} kept idle)")


def banner(options: WorkerOptions, app_name: str, where: str) -> list[str]:
    """What the worker serves, where Redis is, how much at once, and which build runs."""
    import django

    from .. import __version__
    from ..compiled import ENV, compiled_modules

    what = ("route key(s) and channel(s)" if options.routes and options.channels else
            "route key(s)" if options.routes else "channel(s)")
    if os.environ.get(ENV, "") not in ("", "0"):
        build = f"pure Python ({ENV})"
    else:
        build = "compiled" if compiled_modules() else "pure Python (built without a compiler)"
    return [f"Serving {what} {', '.join(options.names)}",
            f"  application  {app_name} (interface {options.interface})",
            f"  Redis        {where}",
            f"  concurrency  {options.concurrency} connections at once, {options.grace:g} s "
            "to drain on SIGTERM",
            f"  build        channels-distributed {__version__} {build}, Django "
            f"{django.get_version()}, pid {os.getpid()}"]
