"""The ``CHANNELS_DISTRIBUTED`` and ``CHANNEL_LAYERS`` settings, mapped onto the package's own
configuration objects (``conf.DistributorConfig``, ``conf.RedisTarget``)::

    CHANNELS_DISTRIBUTED = {
        "ROUTES": [("^/chat/", "chat"), ("^/api/", "api"), ("^/", "site")],
        "LAYER": "default",       # Redis servers and key prefix of this channel layer
        "WORKER_TIMEOUT": 5,      # and any other distributor setting, upper-cased
    }

Every check of a value is made by ``conf/``; this module only finds the values, and names them
the way the project writes them (``CHANNELS_DISTRIBUTED['WORKER_TIMEOUT']``) in the errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..conf import DistributorConfig, LayerConfig, RedisTarget
from ..exceptions import ConfigurationError

__all__ = [
    "DISTRIBUTOR_KEYS",
    "KEYS",
    "SETTING",
    "Connection",
    "connection",
    "distributor_config",
    "distributor_options",
    "layer_alias",
    "layer_errors",
    "layer_setting",
    "name",
    "our_backend",
    "project_settings",
    "worker_application",
]

SETTING = "CHANNELS_DISTRIBUTED"
DEFAULT_LAYER = "default"  # channels.DEFAULT_CHANNEL_LAYER, without importing channels here
#: The distributor's own settings, as the project writes them (upper-case) -> keyword argument.
DISTRIBUTOR_KEYS = {f.name.upper(): f.name for f in fields(DistributorConfig)
                    if f.name not in ("routes", "hosts", "prefix")}
#: Every key of CHANNELS_DISTRIBUTED.
KEYS = ("ROUTES", "LAYER", "HOSTS", "PREFIX", "WORKER_APPLICATION", *DISTRIBUTOR_KEYS)


def name(key: str) -> str:
    """How an error names a key of the setting."""
    return f"{SETTING}[{key!r}]"


def project_settings(settings: Any) -> Mapping[str, Any]:
    """CHANNELS_DISTRIBUTED (empty when unset), checked for its shape and key names."""
    value = getattr(settings, SETTING, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(SETTING, f"expected a dict, got {type(value).__name__}",
                                 f"write {SETTING} = {{'ROUTES': [('^/', 'site')]}}")
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise ConfigurationError(name(unknown[0]), f"is not a setting of {SETTING}",
                                 f"the settings are {', '.join(KEYS)}")
    return value


def layer_alias(settings: Any, given: str | None = None) -> str:
    """The channel layer whose Redis the distributor and workers use: ``given`` (runworker's
    ``--layer``), else CHANNELS_DISTRIBUTED['LAYER'], else ``"default"``."""
    alias = given or project_settings(settings).get("LAYER", DEFAULT_LAYER)
    if not isinstance(alias, str):
        raise ConfigurationError(name("LAYER"), f"expected a layer name, got {alias!r}",
                                 "name a key of CHANNEL_LAYERS, e.g. 'default'")
    return alias


@dataclass(frozen=True)
class Connection:
    """Where the distributor's and workers' Redis is: servers and key prefix."""

    alias: str  # the channel layer named
    hosts: Any  # its ``hosts`` setting, or CHANNELS_DISTRIBUTED['HOSTS']
    prefix: str
    #: The channel layer's BACKEND (None when HOSTS is given and the layer is not set).
    backend: str | None


def connection(settings: Any, alias: str | None = None) -> Connection:
    """Redis servers and prefix: CHANNELS_DISTRIBUTED's HOSTS and PREFIX, else the channel
    layer's ``CONFIG`` (``hosts``, ``prefix``), checked by ``conf.RedisTarget``."""
    ours = project_settings(settings)
    alias = layer_alias(settings, alias)
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    layer = layers.get(alias)
    if layer is None and "HOSTS" not in ours:
        raise ConfigurationError(
            f"CHANNEL_LAYERS[{alias!r}]", "is not set: it is where the distributor and the "
            "workers find Redis", f"add a Redis channel layer named {alias!r} to CHANNEL_LAYERS "
            f"(BACKEND 'channels_distributed.layer.RedisChannelLayer'), or set "
            f"{name('HOSTS')}")
    config = (layer or {}).get("CONFIG") or {}
    hosts = ours.get("HOSTS", config.get("hosts"))
    where = name("HOSTS") if "HOSTS" in ours else f"CHANNEL_LAYERS[{alias!r}]['CONFIG']['hosts']"
    if not hosts:
        raise ConfigurationError(where, f"no Redis hosts (the layer's BACKEND is "
                                 f"{(layer or {}).get('BACKEND')!r})",
                                 "use a Redis channel layer such as 'channels_distributed.layer."
                                 f"RedisChannelLayer' with CONFIG 'hosts', or set {name('HOSTS')}")
    prefix = ours.get("PREFIX", config.get("prefix"))  # None: RedisTarget's default
    try:
        target = RedisTarget.resolve(hosts=hosts, prefix=prefix)
    except ConfigurationError as exc:
        setting = where if exc.setting == "hosts" else (
            name("PREFIX") if "PREFIX" in ours else f"CHANNEL_LAYERS[{alias!r}]['CONFIG']"
            "['prefix']")
        raise ConfigurationError(setting, exc.problem, exc.fix) from None
    return Connection(alias, hosts, target.prefix, (layer or {}).get("BACKEND"))


def layer_setting(alias: str, exc: ConfigurationError) -> ConfigurationError:
    """A mistake ``RedisChannelLayer`` found in its ``CONFIG``, named as the project writes it
    (``CHANNEL_LAYERS['default']['CONFIG']['capacity']``)."""
    return ConfigurationError(f"CHANNEL_LAYERS[{alias!r}]['CONFIG'][{exc.setting!r}]",
                              exc.problem, exc.fix)


def our_backend(backend: Any) -> bool:
    """Whether ``backend`` (a BACKEND path) is this package's layer, or a subclass of it that
    takes the same CONFIG (it does not define ``__init__``)."""
    from django.utils.module_loading import import_string

    from ..layer import RedisChannelLayer

    try:
        found = import_string(backend) if isinstance(backend, str) else None
    except ImportError:  # Channels says so when it loads the layer
        return False
    return (isinstance(found, type) and issubclass(found, RedisChannelLayer)
            and found.__init__ is RedisChannelLayer.__init__)


def layer_errors(alias: str, layer: Any) -> list[ConfigurationError]:
    """Every mistake in the ``CONFIG`` of a ``RedisChannelLayer`` of CHANNEL_LAYERS, one each,
    found by the layer's own checks (``LayerConfig``): each key it refuses is taken out and
    the rest checked again. Other backends' settings are not ours to judge: none."""
    import difflib

    if not isinstance(layer, Mapping) or not our_backend(layer.get("BACKEND")):
        return []
    config = layer.get("CONFIG") or {}
    if not isinstance(config, Mapping):
        return [ConfigurationError(f"CHANNEL_LAYERS[{alias!r}]['CONFIG']", "expected a dict, "
                                   f"got {type(config).__name__}",
                                   "write e.g. {'hosts': ['redis://localhost:6379/0']}")]
    remaining, found = dict(config), list[ConfigurationError]()
    known = [f.name for f in fields(LayerConfig)]
    while True:
        try:
            LayerConfig.from_kwargs(**remaining)
            return found
        except ConfigurationError as exc:
            if exc.setting not in remaining:  # not a key's own mistake: report it, stop
                return [*found, layer_setting(alias, exc)]
            if exc.problem.startswith("is not a setting"):
                close = difflib.get_close_matches(exc.setting, known, 1)
                if close:
                    exc = ConfigurationError(exc.setting, exc.problem,
                                             f"did you mean {close[0]!r}? Otherwise {exc.fix}")
            found.append(layer_setting(alias, exc))
            del remaining[exc.setting]


def distributor_options(settings: Any) -> tuple[Any, dict[str, Any]]:
    """``create_path_distributor``'s routes and keyword arguments from the settings."""
    ours = project_settings(settings)
    if not ours:
        raise ConfigurationError(SETTING, "is not set", f"add {SETTING} = {{'ROUTES': "
                                 "[('^/api/', 'api'), ('^/', 'site')]} to your settings")
    if "ROUTES" not in ours:
        raise ConfigurationError(name("ROUTES"), "is missing: the edge needs to know which "
                                 "route key each path goes to",
                                 "add 'ROUTES': [('^/api/', 'api'), ('^/', 'site')]")
    found = connection(settings)
    options = {DISTRIBUTOR_KEYS[k]: v for k, v in ours.items() if k in DISTRIBUTOR_KEYS}
    return ours["ROUTES"], {"hosts": found.hosts, "prefix": found.prefix, **options}


def distributor_config(settings: Any) -> DistributorConfig:
    """The edge's settings, checked; errors name the project's setting."""
    routes, options = distributor_options(settings)
    try:
        return DistributorConfig.from_options(routes, **options)
    except ConfigurationError as exc:
        key = exc.setting.upper()
        if key not in KEYS:  # a check of a part (e.g. one route's template): it is in ROUTES
            key = "ROUTES"
        raise ConfigurationError(name(key), exc.problem, exc.fix) from None


def worker_application(settings: Any) -> str | None:
    """The import path of the application workers run: CHANNELS_DISTRIBUTED's
    WORKER_APPLICATION, else ASGI_APPLICATION (None when neither is set)."""
    spec = project_settings(settings).get("WORKER_APPLICATION") or getattr(
        settings, "ASGI_APPLICATION", None)
    if spec is not None and not isinstance(spec, str):
        raise ConfigurationError(name("WORKER_APPLICATION"), f"expected an import path, got "
                                 f"{spec!r}", "write e.g. 'myproject.asgi.application'")
    return spec
