"""``manage.py check`` on CHANNELS_DISTRIBUTED and on the CONFIG of our channel layers: each
mistake has its id, names the setting as the project writes it, and says the fix. In memory: the
checks read settings, nothing connects."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from channels_distributed.django.checks import check_layers, check_runworker, check_settings
from channels_distributed.django.settings import distributor_config

PROJECT = {"ROUTES": [("^/api/", "api"), ("^/", "site")]}


def _ours(**settings: Any) -> list[checks.CheckMessage]:
    with override_settings(**settings):
        return [*check_layers(), *check_settings(), *check_runworker()]


def test_the_test_project_passes_every_check() -> None:
    call_command("check", fail_level="WARNING")  # raises SystemCheckError on any message
    assert _ours() == []


def test_a_project_without_the_setting_is_not_checked() -> None:
    with override_settings(INSTALLED_APPS=["channels", "channels_distributed"]):
        from django.conf import settings

        del settings.CHANNELS_DISTRIBUTED
        assert check_settings() == [] and check_runworker() == []


@pytest.mark.parametrize(("setting", "code", "message", "hint"), [
    (["^/"], "E001", "CHANNELS_DISTRIBUTED: expected a dict, got list", "'ROUTES'"),
    ({**PROJECT, "WORKER_TIMEOUTS": 5}, "E001",
     "CHANNELS_DISTRIBUTED['WORKER_TIMEOUTS']: is not a setting of CHANNELS_DISTRIBUTED",
     "WORKER_TIMEOUT"),
    ({"LAYER": "default"}, "E002", "CHANNELS_DISTRIBUTED['ROUTES']: is missing",
     "'ROUTES': [('^/api/', 'api')"),
    ({"ROUTES": "^/"}, "E002", "CHANNELS_DISTRIBUTED['ROUTES']: expected a dict", ""),
    ({**PROJECT, "LAYER": "elsewhere"}, "E003", "CHANNEL_LAYERS['elsewhere']: is not set",
     "add a Redis channel layer named 'elsewhere'"),
    ({**PROJECT, "HOSTS": ["ftp://x"]}, "E003", "CHANNELS_DISTRIBUTED['HOSTS']: 'ftp://x' is "
     "not a redis://", "redis://localhost:6379/0"),
    ({**PROJECT, "PREFIX": "a b"}, "E003", "CHANNELS_DISTRIBUTED['PREFIX']: expected a string "
     "without braces or spaces", "'asgi'"),
    ({**PROJECT, "WORKER_TIMEOUT": 0}, "E004", "CHANNELS_DISTRIBUTED['WORKER_TIMEOUT']: "
     "expected a positive number, got 0", "set worker_timeout to a number above zero"),
    ({**PROJECT, "NO_WORKER_STATUS": 200}, "E004", "CHANNELS_DISTRIBUTED['NO_WORKER_STATUS']: "
     "expected an HTTP error status, got 200", "503"),
    ({**PROJECT, "WORKER_APPLICATION": 3}, "E006", "CHANNELS_DISTRIBUTED['WORKER_APPLICATION']: "
     "expected an import path", "myproject.asgi.application"),
])
def test_each_mistake_names_the_setting_and_the_fix(setting: Any, code: str, message: str,
                                                    hint: str) -> None:
    (error,) = _ours(CHANNELS_DISTRIBUTED=setting)
    assert error.id == f"channels_distributed.{code}"
    assert error.level == checks.ERROR
    assert error.msg.startswith(message), error.msg
    assert hint in error.hint


def test_a_layer_without_redis_is_refused() -> None:
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    (error,) = _ours(CHANNEL_LAYERS=layers)
    assert error.id == "channels_distributed.E003"
    assert error.msg.startswith("CHANNEL_LAYERS['default']['CONFIG']['hosts']: no Redis hosts")
    assert "CHANNELS_DISTRIBUTED['HOSTS']" in error.hint


def test_the_layers_prefix_is_checked_where_it_is_written() -> None:
    # Once (E007, the layer's own check), not again as where the distributor finds Redis.
    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://h:1/0"], "prefix": "no good"}}}
    (error,) = _ours(CHANNEL_LAYERS=layers)
    assert error.id == "channels_distributed.E007"
    assert error.msg.startswith("CHANNEL_LAYERS['default']['CONFIG']['prefix']")


def test_another_layers_prefix_is_checked_as_where_redis_is() -> None:
    # channels_redis' CONFIG is not ours to judge, but its prefix is the route keys' prefix.
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://h:1/0"], "prefix": "no good"}}}
    (error,) = _ours(CHANNEL_LAYERS=layers)
    assert error.id == "channels_distributed.E003"
    assert error.msg.startswith("CHANNEL_LAYERS['default']['CONFIG']['prefix']")


OUR_LAYER = "channels_distributed.layer.RedisChannelLayer"


def _layer(config: Any, backend: str = OUR_LAYER) -> dict[str, Any]:
    return {"default": {"BACKEND": backend, "CONFIG": config}}


@pytest.mark.parametrize("with_the_setting", [True, False])
def test_a_misspelt_layer_key_is_an_error_that_names_it(with_the_setting: bool) -> None:
    """`"capcity": 10` passed every check; runworker then refused it."""
    from django.conf import settings

    config = {"hosts": ["redis://h:1/0"], "capcity": 10}
    with override_settings(CHANNEL_LAYERS=_layer(config)):
        if not with_the_setting:  # a project using the layer only: checked all the same
            del settings.CHANNELS_DISTRIBUTED
        (error,) = [*check_layers(), *check_settings(), *check_runworker()]
    assert error.id == "channels_distributed.E007"
    assert error.level == checks.ERROR
    assert error.msg == ("CHANNEL_LAYERS['default']['CONFIG']['capcity']: is not a setting of "
                         "RedisChannelLayer")
    assert error.hint.startswith("did you mean 'capacity'? Otherwise remove it from CONFIG")


def test_each_layer_mistake_is_one_error() -> None:
    config = {"hosts": ["ftp://x"], "capcity": 10, "expiry": 0, "prefix": "a b",
              "channel_capacity": {"http.*": -1}, "serializer_format": "msgpack"}
    errors = _ours(CHANNEL_LAYERS=_layer(config))
    assert {e.id for e in errors} == {"channels_distributed.E007"}
    named = sorted(e.msg.split(":")[0] for e in errors)
    assert named == sorted(f"CHANNEL_LAYERS['default']['CONFIG'][{key!r}]" for key in (
        "hosts", "capcity", "expiry", "prefix", "channel_capacity"))
    expiry = next(e for e in errors if "'expiry'" in e.msg)
    assert "expected a positive number, got 0" in expiry.msg
    assert expiry.hint == "give seconds, e.g. 60"


def test_the_check_and_the_layer_say_the_same() -> None:
    """One code: what the check reports is what the layer raises when it is built."""
    from channels_distributed.exceptions import ConfigurationError
    from channels_distributed.layer import RedisChannelLayer

    for key, value in (("capacity", True), ("group_expiry", "1 day"), ("hosts", "redis://h")):
        (error,) = _ours(CHANNEL_LAYERS=_layer({key: value}))
        with pytest.raises(ConfigurationError) as raised:
            RedisChannelLayer(**{key: value})
        assert error.msg == f"CHANNEL_LAYERS['default']['CONFIG'][{key!r}]: {raised.value.problem}"
        assert error.hint == raised.value.fix


@pytest.mark.parametrize("layers", [
    _layer({"anything": 1}, "channels.layers.InMemoryChannelLayer"),  # not ours to judge
    _layer({"capcity": 1}, "no.such.Layer"),  # Channels says so when it loads it
    _layer({"hosts": ["redis://h:1/0"], "capacity": 5, "expiry": 30, "prefix": "p",
            "symmetric_encryption_keys": ["k"], "random_prefix_length": 4}),
])
def test_what_the_layer_check_leaves_alone(layers: dict[str, Any]) -> None:
    with override_settings(CHANNEL_LAYERS=layers):
        assert check_layers() == []


def test_a_layer_config_that_is_not_a_dict() -> None:
    with override_settings(CHANNEL_LAYERS=_layer(["redis://h:1/0"])):
        (error,) = check_layers()
    assert error.msg == "CHANNEL_LAYERS['default']['CONFIG']: expected a dict, got list"


def test_workers_need_an_application() -> None:
    (error,) = _ours(ASGI_APPLICATION=None)
    assert error.id == "channels_distributed.E006"
    assert "ASGI_APPLICATION" in error.hint


def test_channels_listed_first_makes_its_runworker_win() -> None:
    from django.conf import settings

    apps = [a for a in settings.INSTALLED_APPS if a != "channels_distributed"]
    apps.insert(apps.index("channels") + 1, "channels_distributed")
    (error,) = _ours(INSTALLED_APPS=apps)
    assert error.id == "channels_distributed.E005"
    assert "'manage.py runworker' is channels's" in error.msg
    assert error.hint == "list 'channels_distributed' before 'channels' in INSTALLED_APPS"


def test_settings_map_onto_the_distributor_config() -> None:
    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://h:7000/3"], "prefix": "proj"}}}
    with override_settings(CHANNEL_LAYERS=layers, CHANNELS_DISTRIBUTED={
            **PROJECT, "WORKER_TIMEOUT": 2.5, "QUEUE_CAPACITY": 50}):
        from django.conf import settings

        config = distributor_config(settings)
    assert (config.worker_timeout, config.queue_capacity, config.prefix) == (2.5, 50, "proj")
    assert [h.describe() for h in config.hosts] == ["redis://h:7000/3"]
    assert config.routes.resolve("/api/x") == "api" and config.routes.resolve("/x") == "site"


def test_hosts_and_prefix_of_its_own_win_over_the_layers() -> None:
    with override_settings(CHANNELS_DISTRIBUTED={**PROJECT, "HOSTS": ["redis://other:1/2"],
                                                 "PREFIX": "edge"}):
        from django.conf import settings

        config = distributor_config(settings)
    assert ([h.describe() for h in config.hosts], config.prefix) == (["redis://other:1/2"],
                                                                      "edge")


def test_a_bad_spread_names_the_projects_setting() -> None:
    from channels_distributed.exceptions import ConfigurationError

    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://h:7000/3"]}}}
    with override_settings(CHANNEL_LAYERS=layers,
                           CHANNELS_DISTRIBUTED={**PROJECT, "SPREAD": {"api": 3}}):
        from django.conf import settings

        assert distributor_config(settings).spread == {"api": 3}
    with override_settings(CHANNEL_LAYERS=layers,
                           CHANNELS_DISTRIBUTED={**PROJECT, "SPREAD": {"api": 99}}):
        from django.conf import settings

        with pytest.raises(ConfigurationError) as caught:
            distributor_config(settings)
    assert caught.value.setting == "CHANNELS_DISTRIBUTED['SPREAD']"
