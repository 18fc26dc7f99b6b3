"""The edge application and the worker ``manage.py runworker`` makes, from the settings. In
memory: nothing here connects to Redis (the real processes run in tests/e2e/)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.test import override_settings

from channels_distributed.distributor import PathDistributor
from channels_distributed.django import get_edge_application
from channels_distributed.django.worker import WorkerOptions, make_node
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.layer import RedisChannelLayer


def test_the_edge_is_the_distributor_of_the_settings() -> None:
    edge = get_edge_application()
    assert isinstance(edge, PathDistributor)
    routes = edge.config.routes
    assert [routes.resolve(p) for p in ("/chat/lobby/", "/ws/chat/lobby/", "/api/tasks/",
                                        "/admin/")] == ["chat", "chat", "api", "site"]
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert [h.describe() for h in edge.config.hosts] == [layer["hosts"][0]]
    assert edge.config.prefix == layer["prefix"]
    assert edge.config.worker_timeout == 5


def test_a_bad_setting_stops_the_edge_naming_it() -> None:
    with override_settings(CHANNELS_DISTRIBUTED={"ROUTES": [("^/", "site")], "WINDOW": -1}), \
            pytest.raises(ConfigurationError, match=r"CHANNELS_DISTRIBUTED\['WINDOW'\]"):
        get_edge_application()


def test_runworker_serves_its_names_on_the_projects_layer() -> None:
    node, banner = make_node(settings, WorkerOptions(("chat", "tasks"), concurrency=7))
    config = node.config
    assert (config.keys, config.channels, config.concurrency) == (("chat", "tasks"),
                                                                 ("chat", "tasks"), 7)
    assert isinstance(config.target.layer, RedisChannelLayer)  # the project's own layer
    assert config.target.prefix == settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    assert banner[0] == "Serving route key(s) and channel(s) chat, tasks"
    assert banner[1] == "  application  channels_distributed.demo.asgi.application (interface auto)"
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert banner[2] == f"  Redis        {layer['hosts'][0]} (channel layer 'default', prefix " \
        f"{layer['prefix']!r})"
    assert banner[3] == "  concurrency  7 connections at once, 30 s to drain on SIGTERM"
    assert f"pid {os.getpid()}" in banner[4] and "Django " in banner[4]


def test_runworker_narrowed_to_routes_or_channels() -> None:
    routes, _ = make_node(settings, WorkerOptions(("api",), channels=False))
    channels, banner = make_node(settings, WorkerOptions(("tasks",), routes=False))
    assert (routes.config.keys, routes.config.channels) == (("api",), ())
    assert (channels.config.keys, channels.config.channels) == ((), ("tasks",))
    assert banner[0] == "Serving channel(s) tasks"


def test_runworker_with_a_url_and_prefix_of_its_own() -> None:
    node, banner = make_node(settings, WorkerOptions(("api",), url="redis://:secret@h:9/1",
                                                     prefix="mine"))
    assert [h.describe() for h in node.config.target.hosts] == ["redis://h:9/1"]
    assert node.config.target.prefix == "mine"
    assert banner[2] == "  Redis        redis://h:9/1 (--url, prefix 'mine')"  # no password


def test_runworker_with_hosts_of_its_own() -> None:
    with override_settings(CHANNELS_DISTRIBUTED={**settings.CHANNELS_DISTRIBUTED,
                                                 "HOSTS": ["redis://:pw@h:9/5"]}):
        node, banner = make_node(settings, WorkerOptions(("api",)))
    assert [h.describe() for h in node.config.target.hosts] == ["redis://h:9/5"]
    assert isinstance(node._channel_layer, RedisChannelLayer)  # channels: the project's layer
    assert banner[2].startswith("  Redis        redis://h:9/5 (CHANNELS_DISTRIBUTED['HOSTS'], "
                                "channel layer 'default', prefix ")


def test_runworker_with_a_channels_redis_layer_uses_its_hosts() -> None:
    pytest.importorskip("channels_redis", reason="pip install channels_redis to run this")
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://h:9/4"], "prefix": "cr"}}}
    with override_settings(CHANNEL_LAYERS=layers):
        node, _ = make_node(settings, WorkerOptions(("api",)))
    assert [h.describe() for h in node.config.target.hosts] == ["redis://h:9/4"]
    assert node.config.target.prefix == "cr"
    assert type(node._channel_layer).__module__ == "channels_redis.core"


def test_runworker_application_setting_and_app_option() -> None:
    spec = "testproject.workers.hello"
    with override_settings(CHANNELS_DISTRIBUTED={**settings.CHANNELS_DISTRIBUTED,
                                                 "WORKER_APPLICATION": spec}):
        _, banner = make_node(settings, WorkerOptions(("api",)))
    assert banner[1].startswith(f"  application  {spec} ")
    _, banner = make_node(settings, WorkerOptions(("api",), app="testproject.workers:app"))
    assert banner[1].startswith("  application  testproject.workers:app ")
    with override_settings(ASGI_APPLICATION="testproject.nowhere.app"), \
            pytest.raises(ConfigurationError, match=r"^ASGI_APPLICATION: cannot import "
                          r"'testproject\.nowhere\.app'"):
        make_node(settings, WorkerOptions(("api",)))
    with override_settings(CHANNELS_DISTRIBUTED={**settings.CHANNELS_DISTRIBUTED,
                                                 "WORKER_APPLICATION": "testproject.no.app"}), \
            pytest.raises(ConfigurationError, match=r"^CHANNELS_DISTRIBUTED\['WORKER_APPLICATION"
                          r"'\]: cannot import"):
        make_node(settings, WorkerOptions(("api",)))


def test_runworker_layer_option_picks_another_layers_redis() -> None:
    layers = {**settings.CHANNEL_LAYERS,
              "jobs": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                       "CONFIG": {"hosts": ["redis://jobs:6380/2"], "prefix": "jobs"}}}
    with override_settings(CHANNEL_LAYERS=layers):
        node, banner = make_node(settings, WorkerOptions(("api",), layer="jobs"))
    assert [h.describe() for h in node.config.target.hosts] == ["redis://jobs:6380/2"]
    assert node.config.target.prefix == "jobs"
    assert banner[2] == "  Redis        redis://jobs:6380/2 (channel layer 'jobs', prefix 'jobs')"


def test_runworker_names_a_layer_mistake_and_its_fix() -> None:
    """It said "capcity: is not a setting ... (or pass --url redis://host:port/db)": the fix is
    the setting, and --url is none. The system checks stop it first (E007); past them
    (--skip-checks), the layer's error names the setting as written."""
    from django.core.management import call_command
    from django.core.management.base import CommandError, SystemCheckError

    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "capcity": 10}
    layers = {"default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": config}}
    with override_settings(CHANNEL_LAYERS=layers):
        with pytest.raises(SystemCheckError, match=r"channels_distributed\.E007"):
            call_command("runworker", "site", skip_checks=False)
        with pytest.raises(CommandError) as refused:
            call_command("runworker", "site")
    message = str(refused.value)
    assert message.startswith("CHANNEL_LAYERS['default']['CONFIG']['capcity']: is not a "
                              "setting of RedisChannelLayer"), message
    assert "--url" not in message
