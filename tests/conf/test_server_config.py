"""The server's settings read from gunicorn's (``channels_distributed/conf/server.py``), in
memory: on every gunicorn release from 23.0, and refused with the setting's name when wrong."""

from __future__ import annotations

import pytest
from gunicorn.config import Config

from channels_distributed.conf.server import ServerConfig, extra_settings, setting
from channels_distributed.exceptions import ConfigurationError


@pytest.mark.core
@pytest.mark.parametrize("missing", [(), ("asgi_loop", "asgi_lifespan", "root_path",
                                          "websocket_max_message_size", "header_map")])
def test_settings_newer_than_gunicorn_23_take_their_defaults(missing):
    """gunicorn 23.0 lacks these settings (``cfg.asgi_loop`` raises AttributeError there): the
    worker reads them with their defaults. The floors session runs this on a real 23.0."""
    cfg = Config()
    for name in missing:
        cfg.settings.pop(name, None)  # as on a gunicorn release that predates them
    config = ServerConfig.from_gunicorn(cfg, environ={})
    assert (config.root_path, config.lifespan, config.header_map) == ("", "auto", "drop")
    assert config.ws_max_message_size == ServerConfig.ws_max_message_size
    assert setting(cfg, "asgi_loop", "auto") in ("auto", "uvloop", "asyncio")
    assert ServerConfig.from_gunicorn(cfg, environ={"CD_ROOT_PATH": "/api"}).root_path == "/api"


def test_negative_gc_threshold_names_the_setting():
    with pytest.raises(ConfigurationError, match="gc_threshold"):
        ServerConfig(**extra_settings({}, {"CD_GC_THRESHOLD": "-1"}))
    with pytest.raises(ConfigurationError, match="CD_GC_THRESHOLD"):
        extra_settings({}, {"CD_GC_THRESHOLD": "lots"})
