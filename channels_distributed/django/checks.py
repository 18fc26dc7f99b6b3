"""System checks (``manage.py check``, and every command that runs checks) of the settings the
package reads. Each error names the setting and the fix:

* ``channels_distributed.E001``: CHANNELS_DISTRIBUTED is not a dict, or has an unknown key;
* ``E002``: its ROUTES are missing or wrong;
* ``E003``: the Redis connection (LAYER, HOSTS, PREFIX, or the channel layer they name);
* ``E004``: another distributor setting (WORKER_TIMEOUT, QUEUE_CAPACITY, ...);
* ``E005``: another app's ``runworker`` (Channels') wins over this package's;
* ``E006``: workers have no application to run (WORKER_APPLICATION or ASGI_APPLICATION);
* ``E007``: the ``CONFIG`` of a ``RedisChannelLayer`` in CHANNEL_LAYERS has a mistake (an
  unknown key, a bad value): one error per mistake, found by the layer's own checks, with or
  without CHANNELS_DISTRIBUTED.

``manage.py check --deploy`` also runs the Redis preflight (``preflight.py``; tag ``redis``):
``W010``, ``E011``, ``E012``, ``W013``/``E013``, ``E014`` and ``W015``, on the Redis the edge
and the workers use, or, without CHANNELS_DISTRIBUTED, on each ``RedisChannelLayer``'s
(docs/preflight.rst).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from ..conf import LayerConfig, RedisTarget
from ..exceptions import ConfigurationError
from .settings import (
    SETTING,
    connection,
    distributor_config,
    layer_alias,
    layer_errors,
    our_backend,
    project_settings,
    worker_application,
)

__all__ = ["check_layers", "check_redis", "check_runworker", "check_settings", "register"]

_IDS = {"ROUTES": "E002", "LAYER": "E003", "HOSTS": "E003", "PREFIX": "E003",
        "WORKER_APPLICATION": "E006", "ASGI_APPLICATION": "E006"}


def _code(exc: ConfigurationError) -> str:
    if exc.setting == SETTING or exc.problem.startswith("is not a setting of"):
        return "E001"
    if exc.setting.startswith("CHANNEL_LAYERS"):
        return "E003"
    key = exc.setting.partition("[")[2].strip("'\"]") or exc.setting
    return _IDS.get(key, "E004")


def _error(exc: ConfigurationError, code: str | None = None) -> checks.Error:
    return checks.Error(f"{exc.setting}: {exc.problem}", hint=exc.fix,
                        id=f"channels_distributed.{code or _code(exc)}")


def _layers() -> dict[str, Any]:
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    return dict(layers) if isinstance(layers, dict) else {}


def check_layers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each RedisChannelLayer's CONFIG, checked by the layer's own code: what the layer would
    refuse when a worker or a view first uses it, reported before anything runs."""
    return [_error(exc, "E007") for alias, layer in _layers().items()
            for exc in layer_errors(alias, layer)]


def _reported_by_check_layers(exc: ConfigurationError) -> bool:
    """A mistake in the CONFIG of the layer CHANNELS_DISTRIBUTED uses, when check_layers
    reports it already (that layer is ours): one error per mistake."""
    try:
        alias = layer_alias(settings)
    except ConfigurationError:
        return False
    return exc.setting.startswith(f"CHANNEL_LAYERS[{alias!r}]['CONFIG']") and bool(
        layer_errors(alias, _layers().get(alias)))


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """CHANNELS_DISTRIBUTED, resolved as the edge and the workers will resolve it."""
    if getattr(settings, SETTING, None) is None:
        return []
    try:
        project_settings(settings)
        distributor_config(settings)
        if worker_application(settings) is None:
            raise ConfigurationError(
                "ASGI_APPLICATION", "is not set, and neither is "
                f"{SETTING}['WORKER_APPLICATION']: runworker has no application to run",
                "set ASGI_APPLICATION = 'myproject.asgi.application'")
    except ConfigurationError as exc:
        return [] if _reported_by_check_layers(exc) else [_error(exc)]
    return []


def check_runworker(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With CHANNELS_DISTRIBUTED set, ``manage.py runworker`` must be this package's: Django
    takes a command from the first app in INSTALLED_APPS that has it, and Channels' own
    ``runworker`` serves no route key (every request to the edge would wait, then get 503)."""
    if getattr(settings, SETTING, None) is None:
        return []
    from django.core.management import get_commands

    owner = get_commands().get("runworker")
    if owner in (None, "channels_distributed"):
        return []
    return [checks.Error(
        f"'manage.py runworker' is {owner}'s, not channels_distributed's: {owner!r} is listed "
        "before 'channels_distributed' in INSTALLED_APPS, so its workers would serve no route "
        "key", hint="list 'channels_distributed' before 'channels' in INSTALLED_APPS",
        id="channels_distributed.E005")]


def check_redis(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The Redis preflight (``manage.py check --deploy``): whether Redis would lose the
    package's work or refuse it. It connects, so it runs with ``--deploy`` only."""
    from ..preflight import run

    messages: list[checks.CheckMessage] = []
    for target, workers, window in _redis_targets():
        for finding in run(target.hosts, target.prefix, workers=workers, window=window).findings:
            kind = checks.Error if finding.level == "error" else checks.Warning
            messages.append(kind(f"{finding.server}: {finding.problem}", hint=finding.fix,
                                 id=finding.id))
    return messages


def _redis_targets() -> list[tuple[RedisTarget, bool, float]]:
    """(servers and prefix, for the edge and the workers?, how far deadlines reach): the Redis
    of CHANNELS_DISTRIBUTED with its WORKER_TIMEOUT, else each RedisChannelLayer's with its
    expiry. None for settings with mistakes: the other checks report those."""
    try:
        if getattr(settings, SETTING, None) is not None:
            found = connection(settings)
            return [(RedisTarget.resolve(hosts=found.hosts, prefix=found.prefix), True,
                     distributor_config(settings).worker_timeout)]
        targets = []
        for alias, layer in _layers().items():
            if isinstance(layer, dict) and our_backend(layer.get("BACKEND")) \
                    and not layer_errors(alias, layer):
                config = LayerConfig.from_kwargs(**(layer.get("CONFIG") or {}))
                targets.append((RedisTarget(config.hosts, config.prefix), False, config.expiry))
    except ConfigurationError:
        return []
    return targets


def register() -> None:
    """Register the checks (from the app's ``ready()``)."""
    checks.register(check_layers)
    checks.register(check_settings)
    checks.register(check_runworker)
    checks.register(check_redis, "redis", deploy=True)
