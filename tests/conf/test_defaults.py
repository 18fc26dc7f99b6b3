"""Each default is written once, in its configuration dataclass's field: the command lines, the
Django worker's options, the channel layer's keyword arguments and the gunicorn worker's
settings all read theirs from there; a misspelt setting is named."""

from __future__ import annotations

import argparse

import pytest
from gunicorn.config import Config

from channels_distributed.cli import _parser
from channels_distributed.conf import LayerConfig, NodeConfig, ServerConfig
from channels_distributed.conf.checks import field_defaults
from channels_distributed.django.worker import WorkerOptions
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.worker import Node

NODE = field_defaults(NodeConfig)


async def _app(scope: dict, receive: object, send: object) -> None:
    """An ASGI 3 application that is never called here."""


def _worker_parsers() -> dict[str, argparse.ArgumentParser]:
    from channels_distributed.management.commands.runworker import Command

    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"channels-distributed worker": commands.choices["worker"],
            "manage.py runworker": Command().create_parser("manage.py", "runworker")}


@pytest.mark.parametrize("command", ["channels-distributed worker", "manage.py runworker"])
def test_the_worker_commands_take_their_defaults_from_node_config(command: str) -> None:
    parser = _worker_parsers()[command]
    for name in ("concurrency", "grace", "interface"):
        assert parser.get_default(name) == NODE[name], name
    text = " ".join(parser.format_help().split())
    assert f"(default {NODE['concurrency']})" in text
    assert f"(default {NODE['grace']:g})" in text


def test_runworkers_options_and_the_node_default_alike() -> None:
    options = WorkerOptions(("api",))
    assert (options.concurrency, options.grace, options.interface) == (
        NODE["concurrency"], NODE["grace"], NODE["interface"])
    config = NodeConfig.from_options(key="k", url="redis://127.0.0.1:1/0")
    assert {name: getattr(config, name) for name in NODE} == NODE


def test_the_layers_keyword_arguments_default_to_its_fields() -> None:
    config = LayerConfig.from_kwargs(hosts=["redis://127.0.0.1:1/0"])
    assert {name: getattr(config, name) for name in field_defaults(LayerConfig)} == \
        field_defaults(LayerConfig)


def test_gunicorn_settings_left_unset_take_the_fields_defaults() -> None:
    """gunicorn's 0 for keepalive and graceful_timeout, or no asgi_lifespan/header_map at all
    (gunicorn 23), mean the ServerConfig field's default."""
    cfg = Config()
    cfg.set("keepalive", 0)
    cfg.set("graceful_timeout", 0)
    for name in ("asgi_lifespan", "header_map", "root_path", "websocket_max_message_size"):
        cfg.settings.pop(name, None)
    config = ServerConfig.from_gunicorn(cfg, environ={})
    defaults = field_defaults(ServerConfig)
    for name in ("keepalive", "graceful_timeout", "lifespan", "header_map", "root_path",
                 "ws_max_message_size", "proxy_protocol", "gc_threshold"):
        assert getattr(config, name) == defaults[name], name


def test_a_misspelt_worker_setting_is_named() -> None:
    """It raised TypeError from deep inside (RedisTarget.resolve() got an unexpected keyword)."""
    with pytest.raises(ConfigurationError) as caught:
        Node(_app, key="k", concurency=5)
    assert caught.value.setting == "concurency"
    assert "is not a setting of a worker" in str(caught.value)
    assert "'concurrency'" in caught.value.fix and "'url'" in caught.value.fix
