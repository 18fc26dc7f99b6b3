"""System checks (``manage.py check``, and every command that runs checks) of the settings the
package reads. Each error names the setting and the fix:

* ``channels_distributed.E001``: CHANNELS_DISTRIBUTED is not a dict, or has an unknown key;
* ``E002``: its ROUTES are missing or wrong;
* ``E003``: the Redis connection (LAYER, HOSTS, PREFIX, or the channel layer they name);
* ``E004``: another distributor setting (WORKER_TIMEOUT, QUEUE_CAPACITY, ...);
* ``E005``: another app's ``runworker`` (Channels') wins over this package's;
* ``E006``: workers have no application to run (WORKER_APPLICATION or ASGI_APPLICATION).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from ..exceptions import ConfigurationError
from .settings import SETTING, distributor_config, project_settings, worker_application

__all__ = ["check_runworker", "check_settings", "register"]

_IDS = {"ROUTES": "E002", "LAYER": "E003", "HOSTS": "E003", "PREFIX": "E003",
        "WORKER_APPLICATION": "E006", "ASGI_APPLICATION": "E006"}


def _code(exc: ConfigurationError) -> str:
    if exc.setting == SETTING or exc.problem.startswith("is not a setting of"):
        return "E001"
    if exc.setting.startswith("CHANNEL_LAYERS"):
        return "E003"
    key = exc.setting.partition("[")[2].strip("'\"]") or exc.setting
    return _IDS.get(key, "E004")


def _error(exc: ConfigurationError) -> checks.Error:
    return checks.Error(f"{exc.setting}: {exc.problem}", hint=exc.fix,
                        id=f"channels_distributed.{_code(exc)}")


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
        return [_error(exc)]
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


def register() -> None:
    """Register the checks (from the app's ``ready()``)."""
    checks.register(check_settings)
    checks.register(check_runworker)
